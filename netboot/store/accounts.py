"""Web accounts: the rules for names, passwords and roles, how secrets are hashed, and the records.

Passwords are stored as salted scrypt hashes (``scrypt$n$r$p$salt$hash``; n=2**15, r=8, p=1), API tokens
and session ids only as SHA-256 digests, so a copy of the database gives nobody a way in. Tokens are shown
once, when made.

The repositories over these live one per job beside this module (:mod:`~netboot.store.users`,
:mod:`~netboot.store.tokens`, :mod:`~netboot.store.sessions`, :mod:`~netboot.store.audit`); the tables are
in :mod:`netboot.store.schema` and re-exported here for code that reads them directly. Every read in those
repositories raises on a database problem; callers in the web app turn any exception into "nobody gets in"
(see :mod:`netboot.webapp.auth`), never into "anybody gets in".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from netboot.store.schema import api_tokens, audit, users, web_sessions

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "ROLES",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "SESSION_LIFETIME",
    "TOKEN_PREFIX",
    "USER_RE",
    "AccountError",
    "ApiToken",
    "AuditEntry",
    "User",
    "api_tokens",
    "audit",
    "burn_time",
    "check_new_password",
    "check_password",
    "check_role",
    "check_user_name",
    "digest",
    "hash_password",
    "user_from_row",
    "users",
    "web_sessions",
]

ROLES = ("admin", "viewer")
#: user names: short, plain, no spaces (they show up in audit lines and URLs)
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "nbt_"
SESSION_LIFETIME = 12 * 3600.0

#: scrypt cost; the hash records its own parameters, so raising these later keeps old hashes valid.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class AccountError(ValueError):
    """A refused account change (bad name, weak password, duplicate); ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


# ------------------------------------------------------------------------------------------- hashing


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32
    )


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


def check_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed hash (never raises)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        ni, ri, pi = int(n), int(r), int(p)
        if not (2 <= ni <= 2**20 and 1 <= ri <= 32 and 1 <= pi <= 16):
            return False
        got = _scrypt(password, _unb64(salt), ni, ri, pi)
        return hmac.compare_digest(got, _unb64(digest))
    except (ValueError, TypeError):
        return False


_DUMMY_HASH: str | None = None


def burn_time(password: str) -> None:
    """Spend what a real check costs, so "no such user" and "wrong password" take equally long."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("netboot-dummy-password")
    check_password(_DUMMY_HASH, password)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_user_name(name: str) -> str:
    if not USER_RE.match(name):
        raise AccountError(
            "name", "a user name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError("password", f"a password has at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise AccountError("password", "a password cannot be only spaces")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError("role", f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return role


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    created: float
    generation: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_id: int
    user: str
    name: str
    hint: str
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    ok: bool


def user_from_row(r: Any) -> User:
    """A :class:`User` from a row of ``users`` (or a join that has its columns)."""
    return User(id=r["id"], name=r["name"], role=r["role"], created=r["created"], generation=r["generation"])
