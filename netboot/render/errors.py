"""The one error type of rendering: which template, which line, what went wrong.

Jinja reports problems in several shapes (syntax errors carry a line, undefined names and sandbox refusals
only a traceback). Callers (the HTTP answer endpoint, ``netboot check``) want one thing they can log or
show: ``profiles/rocky9-kickstart/ks.cfg.j2:12: 'vars' has no attribute 'mirorr'``.
"""

from __future__ import annotations


class RenderError(Exception):
    """A template failed to render. ``file`` is the template path, ``line`` its line (when known)."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


class UnknownAnswerFile(LookupError):
    """The profile's kind has no answer file of that name (the HTTP layer answers 404)."""
