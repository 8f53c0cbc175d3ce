"""YAML that remembers where each value came from, so errors can say ``file:line: key: reason``.

Both the daemon's configuration and the profiles are admin-written YAML. A typo must be refused at load
with the file, the line and the key (``profiles/rocky9/profile.yaml:12: unknown key 'kernal'``), not a
traceback. :func:`load` returns plain Python values plus a :class:`Where` lookup keyed by the dotted path
of each mapping key and list item; :func:`schema_errors` turns a pydantic :class:`ValidationError` of
such a document into one :class:`SourceError` per problem at the line of its key.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from netboot.schema_types import CONTROL_RE, did_you_mean, reason_of


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


class SourceError(ValueError):
    """A problem in an admin-written file, already formatted as ``file:line: key: reason``.

    A control character (:data:`~netboot.schema_types.CONTROL_RE`, C1 ones included) in the key (a mapping
    key is admin text too) or the reason is shown escaped (``\\n``, ``\\x9b``), so a message is always one
    line and cannot move a terminal's cursor.
    """

    def __init__(self, file: str, line: int | None, key: str | None, reason: str) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, reason
        where = f"{file}:{line}" if line else file
        shown = f"{where}: {key}: {reason}" if key else f"{where}: {reason}"
        super().__init__(CONTROL_RE.sub(_escape, shown))


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the line of every dotted key path in it."""

    file: str
    data: Any
    lines: dict[str, int]

    def line(self, path: str) -> int | None:
        """The line of ``path`` (``dhcp.range``), or of its nearest enclosing key."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0]
        return self.lines.get("", None)

    def error(self, path: str, reason: str) -> SourceError:
        return SourceError(self.file, self.line(path), path or None, reason)


_BASE60_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _scalar(node: yaml.Node, path: str, constructor: yaml.constructor.SafeConstructor) -> Any:
    """The value of a scalar node, as ``yaml.safe_load`` would give it, except base-60 numbers.

    YAML 1.1 reads an unquoted ``52:54:00:12:34:56`` (a MAC) or ``1:30`` as a base-60 number; YAML 1.2
    dropped that, and an admin never means it: such scalars stay text. Unsupported tags and merge keys
    (``<<``) become a :class:`SourceError` at their line instead of a traceback.
    """
    if (
        isinstance(node, yaml.ScalarNode)
        and node.tag in _BASE60_TAGS
        and node.style is None
        and ":" in node.value
    ):
        return node.value
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        line = node.start_mark.line + 1
        raise SourceError("", line, path or None, f"unsupported YAML: {problem}") from None


def _walk(
    node: yaml.Node, path: str, lines: dict[str, int], constructor: yaml.constructor.SafeConstructor
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node, path, constructor))
            child = f"{path}.{key}" if path else key
            if key in out:
                raise SourceError("", key_node.start_mark.line + 1, child, "duplicate key")
            lines[child] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, child, lines, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(item, f"{path}.{i}" if path else str(i), lines, constructor)
            for i, item in enumerate(node.value)
        ]
    return _scalar(node, path, constructor)


def loads(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document; syntax errors and duplicate keys become :class:`SourceError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceError(file, line, None, f"YAML syntax: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file, None, None, f"YAML syntax: {exc}") from None
    lines: dict[str, int] = {}
    if node is None:
        return Located(file, {}, lines)
    try:
        data = _walk(node, "", lines, yaml.constructor.SafeConstructor())
    except SourceError as exc:
        raise SourceError(file, exc.line, exc.key, exc.reason) from None
    return Located(file, data, lines)


def load(path: Path) -> Located:
    """Read and parse ``path``; an unreadable file is a :class:`SourceError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(path), None, None, f"cannot read: {exc}") from None
    return loads(text, str(path))


# ------------------------------------------------------------------------------ schema errors -> lines


def _model_inside(tp: Any) -> type[BaseModel] | None:
    """The pydantic model a field's type holds (``X``, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _model_inside(arg)
        if found is not None:
            return found
    return None


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model reached by ``loc`` accepts (for a did-you-mean), as a file spells them."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue  # an index into a list of the model already found
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        current = _model_inside(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _dotted(loc: tuple[int | str, ...]) -> str:
    # dict-key errors end in "[key]"; the key itself is already the part before
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("[")))


def schema_errors(
    doc: Located, exc: ValidationError, model: type[BaseModel], *, quote_unknown: bool = False
) -> list[SourceError]:
    """Every error of one validation as ``file:line: key: reason``, in file order.

    A value error names the deepest key the file really holds (a before-validator may have turned
    ``kernel: vmlinuz`` into ``kernel.path``: the admin wrote ``kernel``). An unknown key suggests the
    closest key of its mapping: as ``key: unknown key (did you mean ...)``, or with ``quote_unknown`` as
    ``unknown key 'kernel.pth' (did you mean 'path'?)``. A missing key is reported at its mapping.
    """
    out: list[SourceError] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _dotted(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            name = str(loc[-1])
            hint = did_you_mean(name, _keys_at(model, loc[:-1]))
            if quote_unknown:
                out.append(SourceError(doc.file, doc.line(path), None, f"unknown key {path!r}{hint}"))
            else:
                out.append(doc.error(path, f"unknown key{hint}"))
            continue
        if kind == "missing":
            parent = _dotted(loc[:-1])
            out.append(
                SourceError(
                    doc.file, doc.line(parent), parent or None, f"missing required key {str(loc[-1])!r}"
                )
            )
            continue
        while path and path not in doc.lines:
            path = path.rpartition(".")[0]
        out.append(doc.error(path, reason_of(error)))
    out.sort(key=lambda e: e.line or 0)
    return out


class SourceErrors(SourceError):
    """Every problem found in one or more files; ``errors`` has each, ``str()`` one per line.

    It is a :class:`SourceError` whose file, line, key and reason are the first problem's, so code that
    shows one error keeps working and code that wants all of them reads ``errors``.
    """

    def __init__(self, errors: Sequence[SourceError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.key, first.reason)
        self.errors = list(errors)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])
