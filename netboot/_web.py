"""Where the web UI's templates and static files are: ``web/`` at the top of the source tree, shipped in
the wheel as ``netboot/web`` (a symlink in the tree, so both spellings are the same folder)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def web_dir() -> Path:
    for candidate in (_HERE / "web", _HERE.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError(f"netboot's web/ folder (templates, static) is missing next to {_HERE}")

