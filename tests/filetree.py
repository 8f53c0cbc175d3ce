"""Writing a folder of small text files for a test: ``{relative path: text}``, each text dedented."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write each file under ``root`` (folders made as needed; the text dedented, its leading newline
    dropped, so a test can write it as an indented triple-quoted string) and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root
