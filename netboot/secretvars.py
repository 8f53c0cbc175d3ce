"""Secret variables: which template variables only the machine itself may read, and their redaction.

Answer files need real secrets (a root password hash, a registration token), but everyone else who sees
variables (viewers and admins on the UI and API, previews, the audit log) gets :data:`PLACEHOLDER` in their
place. Which variables are secret:

* by name, always (:func:`is_secret_name`): a mapping key, at any depth and inside lists too, that is one
  of, or ends with ``_`` or ``-`` and one of, ``password``, ``passwd``, ``passphrase``, ``pw`` (each also
  followed by ``_hash``, ``_crypted`` or ``_encrypted``), ``secret``, ``token``, ``key``. So
  ``root_password_hash``, ``password_hash``, ``admin_pw``, ``luks_passphrase``, ``api_token``,
  ``ssh_key`` are secret; ``rootpw`` or ``passwords`` are not (mark them explicitly). The rule errs towards
  hiding: a public key shown as the placeholder costs a viewer little, a hash shown is a leak;
* by a profile's or group's ``secrets:`` list of variable names (``root_pw``, or a dotted path into nested
  mappings such as ``ldap.bind``), merged over the profile's parents and its group; the same names hide the
  system's own variables.

A secret path whose value is a mapping or list hides all of it. ``None`` and ``""`` are left as they are:
they hide nothing, and a template's ``{% if vars.x %}`` then renders the same branch it does for the
machine. Nothing here reads files or knows about profiles: callers pass the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: what a secret value is replaced by (autoescaped in HTML and XML, quoted by the ``json`` filter)
PLACEHOLDER = "<secret>"

_SECRET_NAME = re.compile(
    r"(?:^|[_-])(?:(?:password|passwd|passphrase|pw)(?:[_-](?:hash|crypted|encrypted))?|secret|token|key)$",
    re.IGNORECASE,
)
#: one component of a ``secrets:`` name: a variable name as templates spell it after ``vars.``
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_-]{0,127}"
SECRET_PATH_RE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT}){{0,15}}$")


def is_secret_name(name: str) -> bool:
    """True when a variable called ``name`` is secret by the default rule (see the module docstring)."""
    return bool(_SECRET_NAME.search(name))


def _hidden(value: Any) -> Any:
    return value if value is None or value == "" else PLACEHOLDER


def _paths(names: Iterable[str]) -> dict[str, Any]:
    """``{"a.b", "c"}`` -> a tree ``{"a": {"b": True}, "c": True}`` (True: this key is secret)."""
    tree: dict[str, Any] = {}
    for name in names:
        node = tree
        *parents, last = name.split(".")
        for part in parents:
            child = node.get(part)
            if child is True:
                break  # a parent is secret already: all below it is
            node = node.setdefault(part, {})
        else:
            node[last] = True
    return tree


def _redact(value: Any, tree: Mapping[str, Any] | None) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            marked = tree.get(key) if tree is not None and isinstance(key, str) else None
            if marked is True or (isinstance(key, str) and is_secret_name(key)):
                out[key] = _hidden(item)
            else:
                out[key] = _redact(item, marked if isinstance(marked, Mapping) else None)
        return out
    if isinstance(value, list | tuple):
        # explicit paths stop at lists (they name mapping keys); the default rule goes on inside
        return [_redact(item, None) for item in value]
    return value


def redact(variables: Mapping[str, Any], secret_names: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``variables`` with every secret value replaced by :data:`PLACEHOLDER`.

    ``secret_names`` are the explicit names (``secrets:`` of the profile and group); the default rule
    applies whatever they are. The input is never changed.
    """
    return dict(_redact(variables, _paths(secret_names)))

