"""The shapes of ``profile.yaml`` and ``_groups/<name>.yaml``, as pydantic models.

Each key a file may hold, its type and its refusal are declared here once; :mod:`.loader` validates a
file against :class:`ProfileFile` or :class:`GroupFile` and reports every problem at its line via
:func:`netboot.yamlsource.schema_errors`. What needs more than one file (inheritance, templates on disk,
the data directory, a group's profile existing) is checked by the loader after this.

Every string an admin writes here (description, names, paths, URLs, kernel arguments, template and
label names, selector values, secret names) refuses control characters
(:data:`netboot.schema_types.CONTROL_RE`: C0, DEL, C1, U+2028/U+2029), so a newline cannot reach an iPXE
menu or a kernel command line; the refusal is ``file:line: key: reason`` like every other. A profile's
``description`` is also the text of its iPXE menu item, so it refuses the words iPXE reads as command
separators there (:func:`~netboot.schema_types.ipxe_separator`). ``variables`` are exempt: they are data
for answer-file templates and may hold multi-line text (scripts, keys); a template puts them where its
format quotes them, and what the shipped boot scripts print of them is checked where the kernel line is
built (``kernel_args`` word by word, ``domain`` whole: :mod:`netboot.render.context`).
``secrets`` names the variables only the machine itself reads (see :mod:`netboot.secretvars`).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from functools import partial
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator, field_validator, model_validator

from netboot.profiles.model import FileSource
from netboot.schema_types import (
    BOOT_CHAIN_CHOICES,
    LOCAL_BOOT_CHOICES,
    ArchName,
    BootChain,
    FileModel,
    LocalBoot,
    Mac,
    ProfileName,
    Text,
    choice,
    ipxe_separator,
    text,
    type_name,
)
from netboot.secretvars import SECRET_PATH_RE

__all__ = [
    "BOOT_CHAIN_CHOICES",
    "LOCAL_BOOT_CHOICES",
    "GroupFile",
    "ProfileFile",
    "SelectorFile",
    "SourceFile",
]

_URL_RE = re.compile(r"^(https?|tftp)://[^\s]+$")


# -------------------------------------------------------------------------------------- value checks


def safe_relative(path: str) -> bool:
    """A relative POSIX path that stays below where it starts (no ``..``, no backslash)."""
    p = PurePosixPath(path)
    return bool(path) and "\\" not in path and not p.is_absolute() and ".." not in p.parts


def _relative_within(within: str, value: Any) -> str:
    word = text(value)
    if not word:
        raise ValueError("must not be empty")
    if not safe_relative(word):
        raise ValueError(f"{word!r} escapes {within}: give a path relative to it, without '..'")
    return str(PurePosixPath(word))


def _relpath(within: str) -> Any:
    """A path under ``within``. The check is a module function, not a closure made at import, so the
    mutation tests reach it (docs/testing.md)."""
    return PlainValidator(partial(_relative_within, within))


def _url(value: Any) -> str:
    word = text(value)
    if not _URL_RE.match(word):
        raise ValueError(f"{word!r} is not an http://, https:// or tftp:// URL")
    return word


def _kind(value: Any) -> str:
    # imported here: netboot.render's package imports netboot.profiles (kinds.py itself imports nothing)
    from netboot.render.kinds import KINDS

    return choice("kind", tuple(KINDS))(value)


def _kernel_type(value: Any) -> str:
    from netboot.render.kinds import KERNEL_TYPES

    return choice("kernel type", KERNEL_TYPES)(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type_name(value)}")
    return value


def _menu_text(value: Any) -> str:
    """One-line text that stays one iPXE ``item`` command: no separator word, no comment."""
    word = text(value)
    for part in word.split():
        if ipxe_separator(part):
            what = "starts a comment" if part.startswith("#") else "separates commands"
            raise ValueError(
                f"{part!r} as a word of its own {what} in the iPXE boot menu: attach it to the word "
                "before it or leave it out"
            )
    return word


def _scalar_text(value: Any) -> str:
    """A string, or a number written without quotes (``version: 9``), as text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {type_name(value)}")
    return text(str(value))


def _cmdline(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(text(value).split())
    if not isinstance(value, list):
        raise ValueError(f"expected a list of kernel arguments, got {type_name(value)}")
    out: list[str] = []
    for item in value:
        argument = _scalar_text(item)
        if not argument.strip():
            raise ValueError("must be a non-empty argument without control characters")
        out.extend(argument.split())
    return tuple(out)


def _variables(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of variables, got {type_name(value)}")
    return value


def _secrets(value: Any) -> frozenset[str]:
    """``secrets: [root_pw, ldap.bind]``: variable names, dotted for nested mappings."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of variable names, got {type_name(value)}")
    names: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not SECRET_PATH_RE.fullmatch(item):
            shown = repr(item) if isinstance(item, str) else type_name(item)
            raise ValueError(
                f"{shown} is not a variable name (letters, digits, '_' and '-', dotted for nested ones)"
            )
        names.add(item)
    return frozenset(names)


def _non_empty(value: Any) -> str:
    word = text(value)
    if not word.strip():
        raise ValueError("must not be empty")
    return word


def _uuid(value: Any) -> str:
    word = text(value)
    try:
        return str(uuidlib.UUID(word.strip("{}")))
    except ValueError:
        raise ValueError(f"{word!r} is not a UUID") from None


def _mapping(value: Any, what: str) -> Any:
    """``value`` when it is a mapping; else a refusal naming ``what`` was expected."""
    if not isinstance(value, dict):
        raise ValueError(f"expected {what}, got {type_name(value)}")
    return value


DataPath = Annotated[str, _relpath("the data directory")]
TemplatePath = Annotated[str, _relpath("the profile folder")]
Url = Annotated[str, PlainValidator(_url)]
ScalarText = Annotated[str, PlainValidator(_scalar_text)]
MenuText = Annotated[str, PlainValidator(_menu_text)]
Variables = Annotated[dict[str, Any], PlainValidator(_variables)]
SecretNames = Annotated[frozenset[str], PlainValidator(_secrets)]


# ------------------------------------------------------------------------------------------ profiles


class SourceFile(FileModel):
    """``kernel``/``initrd``: a path in the data directory, a URL, or ``{path, url}`` (local, else URL)."""

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"url": data} if "://" in data else {"path": data}
        if not isinstance(data, dict):
            raise ValueError(f"expected a path, a URL or {{path, url}}, got {type_name(data)}")
        return data

    path: DataPath | None = None
    url: Url | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> SourceFile:
        if self.path is None and self.url is None:
            raise ValueError("needs 'path' (in the data directory), 'url', or both")
        return self

    def source(self) -> FileSource:
        return FileSource(self.path, self.url)


class ProfileFile(FileModel):
    """One ``profile.yaml``, its own keys only (inheritance is the loader's)."""

    not_mapping: ClassVar[str] = "a profile must be a mapping of keys (description, kind, kernel, ...)"

    #: also the text of the profile's item in the iPXE boot menu
    description: MenuText = ""
    parent: ProfileName | None = None
    kind: Annotated[str, PlainValidator(_kind)] | None = None
    kernel: SourceFile | None = None
    initrd: tuple[SourceFile, ...] = ()
    cmdline: Annotated[tuple[str, ...], PlainValidator(_cmdline)] = ()
    kernel_type: Annotated[str, PlainValidator(_kernel_type)] = "linux"
    data_dir: Annotated[str, PlainValidator(_non_empty)] | None = None
    templates: dict[Text, TemplatePath] = Field(default_factory=dict)
    variables: Variables = Field(default_factory=dict)
    secrets: SecretNames = frozenset()
    menu: Annotated[bool, PlainValidator(_flag)] = True
    local_boot: LocalBoot | None = None
    boot_chain: BootChain | None = None
    validate_: dict[Text, ScalarText] = Field(default_factory=dict, alias="validate")

    @field_validator("initrd", mode="before")
    @classmethod
    def _initrd_list(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("templates", mode="before")
    @classmethod
    def _templates_mapping(cls, value: Any) -> Any:
        return _mapping(value, "a mapping of file: template")

    @field_validator("validate_", mode="before")
    @classmethod
    def _validate_mapping(cls, value: Any) -> Any:
        return _mapping(value, "a mapping")

    def fields(self) -> dict[str, Any]:
        """The keys this file sets, by their YAML name, as the loader merges them."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            key = type(self).model_fields[name].alias or name
            if name == "kernel":
                value = value.source() if value is not None else None
            elif name == "initrd":
                value = tuple(s.source() for s in value)
            out[key] = value
        return out


# -------------------------------------------------------------------------------------------- groups


class SelectorFile(FileModel):
    """A group's ``selector``: every key given must match (``labels`` each count one)."""

    not_mapping: ClassVar[str] = "expected a mapping of selectors, got {got}"

    mac: Mac | None = None
    arch: ArchName | None = None
    uuid: Annotated[str, PlainValidator(_uuid)] | None = None
    labels: dict[Text, ScalarText] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_mapping(cls, value: Any) -> Any:
        return _mapping(value, "a mapping")


class GroupFile(FileModel):
    """One ``_groups/<name>.yaml``."""

    not_mapping: ClassVar[str] = "a group must be a mapping (profile, selector, variables)"

    description: Text = ""
    profile: ProfileName
    selector: SelectorFile = Field(default_factory=SelectorFile)
    variables: Variables = Field(default_factory=dict)
    secrets: SecretNames = frozenset()
    local_boot: LocalBoot | None = None
    boot_chain: BootChain | None = None


#: the keys each file may hold, as the files spell them (docs and did-you-mean)
PROFILE_KEYS = tuple(f.alias or n for n, f in ProfileFile.model_fields.items())
SOURCE_KEYS = tuple(SourceFile.model_fields)
GROUP_KEYS = tuple(GroupFile.model_fields)
SELECTOR_KEYS = tuple(SelectorFile.model_fields)
