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


def _walk_hidden(real: Any, shown: Any, path: str, out: list[str]) -> None:
    if shown == PLACEHOLDER and real != PLACEHOLDER:
        out.append(path or ".")
    elif isinstance(real, Mapping) and isinstance(shown, Mapping):
        for key, item in real.items():
            _walk_hidden(item, shown.get(key), f"{path}.{key}" if path else str(key), out)
    elif isinstance(real, list | tuple) and isinstance(shown, list | tuple):
        for index, (item, seen) in enumerate(zip(real, shown, strict=False)):
            _walk_hidden(item, seen, f"{path}[{index}]", out)


def hidden_paths(variables: Mapping[str, Any], secret_names: Iterable[str] = ()) -> list[str]:
    """The dotted paths (``root_password_hash``, ``ldap.bind``, ``users[0].password``) :func:`redact`
    hides in ``variables``: what an audit line says was revealed, without the values."""
    out: list[str] = []
    _walk_hidden(variables, redact(variables, secret_names), "", out)
    return out


def secret_strings(variables: Mapping[str, Any], secret_names: Iterable[str] = ()) -> set[str]:
    """Every string (at any depth) inside a value :func:`redact` hides: what :func:`scrub` looks for."""
    found: set[str] = set()

    def strings(value: Any) -> None:
        if isinstance(value, str):
            if value:
                found.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                strings(item)
        elif isinstance(value, list | tuple):
            for item in value:
                strings(item)
        elif value is not None and not isinstance(value, bool):
            found.add(str(value))

    def walk(real: Any, shown: Any) -> None:
        if shown == PLACEHOLDER and real != PLACEHOLDER:
            strings(real)
        elif isinstance(real, Mapping) and isinstance(shown, Mapping):
            for key, item in real.items():
                walk(item, shown.get(key))
        elif isinstance(real, list | tuple) and isinstance(shown, list | tuple):
            for item, seen in zip(real, shown, strict=False):
                walk(item, seen)

    walk(variables, redact(variables, secret_names))
    return found


#: secret strings shorter than this are not scrubbed from free text (every "a" of a message would go)
SCRUB_MIN = 4


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (an error message, a validator's output) with every secret string in it replaced by
    :data:`PLACEHOLDER`, longest first. A safety net for text made from real values, not a redaction:
    what is rendered for people is rendered from redacted variables in the first place."""
    for secret in sorted({s for s in secrets if len(s) >= SCRUB_MIN}, key=len, reverse=True):
        text = text.replace(secret, PLACEHOLDER)
    return text


def scrub_all(value: Any, secrets: Iterable[str]) -> Any:
    """:func:`scrub` on every string inside ``value`` (mappings, lists; keys too): an event's detail."""
    found = {s for s in secrets if len(s) >= SCRUB_MIN}
    if not found:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return scrub(item, found)
        if isinstance(item, Mapping):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


_MISSING = object()


def _restore(new: Any, shown: Any, real: Any) -> Any:
    if new == PLACEHOLDER and shown == PLACEHOLDER and real is not _MISSING:
        return real
    if isinstance(new, Mapping) and isinstance(shown, Mapping) and isinstance(real, Mapping):
        return {
            key: _restore(item, shown.get(key, _MISSING), real.get(key, _MISSING))
            for key, item in new.items()
        }
    if isinstance(new, list) and isinstance(shown, list | tuple) and isinstance(real, list | tuple):
        return [
            _restore(item, shown[i], real[i]) if i < len(shown) and i < len(real) else item
            for i, item in enumerate(new)
        ]
    return new


def restore(
    new: Mapping[str, Any], stored: Mapping[str, Any], secret_names: Iterable[str] = ()
) -> dict[str, Any]:
    """``new`` variables sent back from a form or an API client that was shown ``stored`` redacted:
    wherever ``new`` still holds :data:`PLACEHOLDER` where the redacted ``stored`` had it, the stored real
    value is put back, so editing one variable never overwrites a secret with ``"<secret>"``. Any other
    value (a new secret, a removed key) is taken as sent."""
    return dict(_restore(new, redact(stored, secret_names), stored))


#: what an audit diff says for a secret that changed (never its old or new value)
CHANGED = "changed"


def _diff(before: Any, after: Any, shown_before: Any, shown_after: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = list(before) + [k for k in after if k not in before]
    for key in keys:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        seen_old, seen_new = shown_before.get(key), shown_after.get(key)
        if (
            isinstance(old, Mapping)
            and isinstance(new, Mapping)
            and isinstance(seen_old, Mapping)
            and isinstance(seen_new, Mapping)
        ):
            out[key] = _diff(old, new, seen_old, seen_new)
        elif PLACEHOLDER in (seen_old, seen_new) or seen_old == seen_new:
            # a secret, or something whose change is only inside one (a list of users with passwords)
            out[key] = CHANGED
        else:
            out[key] = {"from": seen_old, "to": seen_new}
    return out


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], secret_names: Iterable[str] = ()
) -> dict[str, Any]:
    """What changed from ``before`` to ``after``, key by key (nested mappings nest), for an audit line:
    ``{"disk": {"from": "/dev/vda", "to": "/dev/sda"}, "root_password_hash": "changed"}``. The comparison
    is of the real values; what is written is redacted, so a secret's change is :data:`CHANGED` only.
    A key added or removed shows ``None`` on its missing side."""
    names = list(secret_names)
    return _diff(before, after, redact(before, names), redact(after, names))
