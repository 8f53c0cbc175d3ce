"""The Jinja2 environment every netboot template runs in, and nothing else.

Why so strict: answer files carry root password hashes and per-host tokens, and the context carries data
that admins and machines typed (hostnames, labels, variables). So:

* ``ImmutableSandboxedEnvironment``: no ``__class__``/``__globals__`` walks, no ``str.format`` attribute
  tricks, no mutation of lists or dicts handed in as context.
* ``StrictUndefined``: a misspelt variable is an error with the template line, not an empty string.
  ``finalize`` does the same for ``None``: a missing value never renders as the word ``None``.
* No globals but a bounded ``range``; ``self`` is refused at compile time; ``**`` and ``*`` are bounded so
  a template cannot allocate gigabytes.
* The loader reads only the profile's folder, its ancestors' folders and ``profiles/_snippets/``, and
  refuses any name (``..``, symlinks) whose real path leaves them.
* Autoescape is off (these are text formats: kickstart, preseed, YAML, shell) except for ``*.xml.j2``
  templates (AutoYaST), where it is on. Filters ``sh``, ``json`` (YAML), ``xml`` and ``grub`` quote for the
  other formats.

Templates come only from files: data is passed in as context and never compiled.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, Undefined
from jinja2.exceptions import SecurityError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

#: Names refused at compile time: ``self`` is the one context reference Jinja adds to every template.
FORBIDDEN_NAMES = frozenset({"self"})
#: Bounds for ``**`` and sequence repetition with ``*``.
MAX_EXPONENT = 128
MAX_REPEAT_LEN = 1 << 20

_GRUB_SAFE = re.compile(r"^[A-Za-z0-9_./:=,+@%-]+$")


class ConfinedLoader(BaseLoader):
    """Loads ``name`` from the first root that has it, never from outside the roots."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = [(Path(r), os.path.realpath(r)) for r in roots]

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)  # raises TemplateNotFound for '..'
        for shown, real_root in self.roots:
            real = os.path.realpath(os.path.join(real_root, *pieces))
            if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
                continue
            with open(real, encoding="utf-8") as fh:
                source = fh.read()
            mtime = os.path.getmtime(real)

            def uptodate(real: str = real, mtime: float = mtime) -> bool:
                try:
                    return os.path.getmtime(real) == mtime
                except OSError:
                    return False

            return source, str(shown.joinpath(*pieces)), uptodate
        raise TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        found: set[str] = set()
        for _, real_root in self.roots:
            for folder, _dirs, files in os.walk(real_root):
                for name in files:
                    found.add(os.path.relpath(os.path.join(folder, name), real_root).replace(os.sep, "/"))
        return sorted(found)


class RefuseNames(Extension):
    """Refuse :data:`FORBIDDEN_NAMES` while lexing, with the template's line."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        for token in stream:
            if token.type == "name" and token.value in FORBIDDEN_NAMES:
                raise TemplateSyntaxError(
                    f"{token.value!r} is not available in netboot templates",
                    token.lineno,
                    stream.name,
                    stream.filename,
                )
            yield token


class NetbootSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with bounded ``**`` and ``*`` (constant folding of both is off)."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > MAX_REPEAT_LEN
                ):
                    raise SecurityError(f"repetition would make more than {MAX_REPEAT_LEN} items")
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    """Refuse to print None, and undefined values hidden inside a list or dict (``[Undefined]``)."""
    if value is None:
        raise TemplateRuntimeError("value is None: test it with 'is none' or give a default")
    _no_undefined(value, 0)
    return value


def _no_undefined(value: Any, depth: int) -> None:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if depth < 8 and isinstance(value, list | tuple | dict):
        for item in value.values() if isinstance(value, dict) else value:
            _no_undefined(item, depth + 1)


def _autoescape(name: str | None) -> bool:
    return bool(name) and str(name).removesuffix(".j2").endswith(".xml")


def sh_quote(value: Any) -> str:
    """Quote for a POSIX shell word (``curl -o /dev/null {{ url|sh }}``)."""
    return shlex.quote(str(value))


def xml_quote(value: Any) -> str:
    """Escape for XML text and attributes (only needed where autoescape is off)."""
    return xml_escape(str(value), {'"': "&quot;", "'": "&apos;"})


def json_value(value: Any) -> str:
    """A JSON literal, which is also a YAML flow value: data cannot change a YAML document's structure.

    Unlike Jinja's ``tojson`` it does not HTML-escape quotes and ``<>&``, so the YAML stays readable.
    """
    return json.dumps(value, ensure_ascii=True)


def grub_quote(value: Any) -> str:
    """Quote one word for grub.cfg (``;``, ``&``, ``$`` and spaces are special there)."""
    text = str(value)
    if _GRUB_SAFE.match(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def make_environment(search_path: Sequence[Path]) -> NetbootSandbox:
    """An environment whose templates come only from ``search_path`` (first match wins)."""
    env = NetbootSandbox(
        loader=ConfinedLoader(search_path),
        undefined=StrictUndefined,
        autoescape=_autoescape,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # an environment serves one loaded ProfileSet, a snapshot of the folder: a changed file makes a
        # new set (netboot.runtime), so no render stats its templates again
        auto_reload=False,
        extensions=[RefuseNames],
    )
    env.globals.clear()
    env.globals["range"] = safe_range
    env.filters["sh"] = sh_quote
    env.filters["xml"] = xml_quote
    env.filters["grub"] = grub_quote
    env.filters["json"] = json_value
    return env
