"""The field rules of a system, shared by registering and changing one: each refusal names its field.

* the MAC is normalised by :meth:`MacAddress.parse`;
* the hostname follows RFC 1123 (letters, digits, hyphens; labels of 1-63; 253 in all) and is lowercased;
* the IP is a unicast IPv4 address;
* variables are a JSON-able mapping of at most 64 KiB (data for answer-file templates: multi-line values
  are fine there, and the boot scripts filter the ones they print, see :mod:`netboot.render.context`);
* labels are short DNS-like keys and one-line values (no control character, as in a group's selector);
* ``local_boot`` and ``boot_chain`` are each one of the schema's choices, or empty to inherit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from ipaddress import AddressValueError, IPv4Address
from typing import Any, Final

from netboot.inventory import SystemState
from netboot.mac import InvalidMac, MacAddress
from netboot.schema_types import BOOT_CHAIN_CHOICES, LOCAL_BOOT_CHOICES, control_reason

MAX_VARIABLES_BYTES = 64 * 1024
MAX_DEPTH = 16
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
#: states an admin may set directly (``discovered`` is only ever set by a boot)
SETTABLE_STATES = ("install", "installed", "local")


class FieldError(ValueError):
    """Input refused; ``field`` names it (``mac``, ``profile``, ``hostname``, ``ip``, ``vars``...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFound(FieldError):
    """No system with that MAC."""


class Duplicate(FieldError):
    """The MAC is already registered, or the host name or address belongs to another system."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "leave this field as it is" for :func:`set_fields` (None means "clear it")
UNSET: Final = _Unset()


# ------------------------------------------------------------------------------------------- checks


def parse_mac(value: object) -> MacAddress:
    if isinstance(value, MacAddress):
        return value
    if not isinstance(value, str) or not value.strip():
        raise FieldError("mac", "a MAC address is required, e.g. 52:54:00:12:34:56")
    try:
        return MacAddress.parse(value)
    except InvalidMac as exc:
        raise FieldError("mac", str(exc)) from None


def check_hostname(value: object) -> str | None:
    """RFC 1123 host name (or FQDN), lowercased; empty means none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError("hostname", "must be a string")
    text = value.strip().lower().rstrip(".")
    if not text:
        return None
    if len(text) > 253:
        raise FieldError("hostname", "a host name has at most 253 characters")
    for label in text.split("."):
        if not _LABEL.fullmatch(label):  # whole: "web1\n.lab" is no host name
            raise FieldError(
                "hostname",
                f"{value!r} is not a valid host name (RFC 1123: letters, digits "
                "and hyphens, labels of 1-63 characters, no hyphen at either end)",
            )
    return text


def check_ip(value: object) -> IPv4Address | None:
    if value is None:
        return None
    if isinstance(value, IPv4Address):
        ip = value
    elif isinstance(value, str):
        if not value.strip():
            return None
        try:
            ip = IPv4Address(value.strip())
        except (AddressValueError, ValueError):
            raise FieldError("ip", f"{value!r} is not an IPv4 address") from None
    else:
        raise FieldError("ip", "must be a string such as 10.0.0.50")
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback or ip == IPv4Address("255.255.255.255"):
        raise FieldError("ip", f"{ip} cannot be a machine's address")
    return ip


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def check_variables(value: object) -> dict[str, Any]:
    """A mapping with string keys whose JSON form is at most 64 KiB."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("vars", "variables must be a mapping (a JSON object)")
    if _depth(value) > MAX_DEPTH:
        raise FieldError("vars", f"variables nest deeper than {MAX_DEPTH} levels")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FieldError("vars", f"variables must be plain JSON data: {exc}") from None
    if len(text.encode()) > MAX_VARIABLES_BYTES:
        raise FieldError("vars", f"variables take more than {MAX_VARIABLES_BYTES // 1024} KiB")
    result: dict[str, Any] = json.loads(text)
    return result


def parse_variables_text(text: str) -> dict[str, Any]:
    """Variables typed in a form: a JSON object, or empty."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FieldError(
            "vars", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return check_variables(value)


def check_labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("labels", "labels must be a mapping of names to strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _LABEL_KEY.fullmatch(k):
            raise FieldError("labels", f"label name {k!r} must be 1-63 letters, digits, '.', '_', '/' or '-'")
        if not isinstance(v, str) or len(v) > 255:
            raise FieldError("labels", f"label {k!r} must have a string value of at most 255 characters")
        reason = control_reason(v)
        if reason is not None:
            raise FieldError("labels", f"label {k!r} {reason}")
        out[k] = v
    if len(out) > 64:
        raise FieldError("labels", "at most 64 labels")
    return out


def _inherited_choice(field: str, value: object, choices: tuple[str, ...]) -> str | None:
    """One of ``choices``; None (inherit) for None or empty; else :class:`FieldError` on ``field``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in choices:
        raise FieldError(field, f"must be one of {', '.join(choices)} (or empty to inherit)")
    return value


def check_local_boot(value: object) -> str | None:
    """A system's own ``local_boot`` (None or empty: inherit from its group, profile and the site)."""
    return _inherited_choice("local_boot", value, LOCAL_BOOT_CHOICES)


def check_boot_chain(value: object) -> str | None:
    """A system's own ``boot_chain`` (None or empty: inherit from its group, profile and the site).

    ``ipxe``: iPXE loads the boot script (no Secure Boot); ``shim-grub``: the Microsoft-signed shim loads
    signed GRUB, for machines with UEFI Secure Boot on.
    """
    return _inherited_choice("boot_chain", value, BOOT_CHAIN_CHOICES)


def check_state(value: object) -> SystemState:
    if value not in SETTABLE_STATES:
        raise FieldError("state", f"state must be one of {', '.join(SETTABLE_STATES)}")
    return SystemState(value)

