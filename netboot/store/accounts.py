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
import time
from dataclasses import dataclass
from typing import Any

from netboot.store.schema import api_tokens, audit, users, web_sessions

__all__ = [
    "MAX_DURATION",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "ROLES",
    "ROLE_RANK",
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
    "effective_role",
    "hash_password",
    "parse_duration",
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


#: rank of each role: a caller may do what its rank and every lower one may
ROLE_RANK = {"viewer": 0, "admin": 1}


def effective_role(user_role: str, token_role: str | None) -> str | None:
    """What a token acts as: the lower of its own role and its user's (a user demoted after the token was
    made demotes the token too); None when the user's role is unknown (such a caller gets nothing)."""
    if user_role not in ROLE_RANK:
        return None
    if token_role is None or token_role not in ROLE_RANK:
        return user_role if token_role is None else None
    return min(user_role, token_role, key=ROLE_RANK.__getitem__)


_DURATION_RE = re.compile(r"^(?:(\d{1,9})w)?(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s?)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)
#: longest token lifetime accepted (ten years): past it "never" says what is meant
MAX_DURATION = 3650 * 86400


def parse_duration(text: str, field: str = "expires") -> float:
    """Seconds in ``30d``, ``12h``, ``1d12h``, ``90m``, ``2w`` or plain seconds; AccountError naming
    ``field`` otherwise (also for zero and for more than ten years)."""
    compact = text.strip().lower().replace(" ", "")
    found = _DURATION_RE.match(compact) if compact else None
    if found is None or not any(found.groups()):
        raise AccountError(field, f"{text!r} is not a duration: write e.g. 30d, 12h, 1d12h, 90m or 2w")
    seconds = sum(int(n) * unit for n, unit in zip(found.groups(), _DURATION_UNITS, strict=True) if n)
    if seconds <= 0 or seconds > MAX_DURATION:
        raise AccountError(field, f"a duration is between 1 s and ten years; got {text!r}")
    return float(seconds)


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
    #: when it stops working (None: until revoked)
    expires: float | None = None
    #: the role it acts with (None: its user's); never more than its user's, see :func:`effective_role`
    role: str | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    @property
    def active(self) -> bool:
        """Usable now: neither revoked nor expired."""
        return self.revoked is None and not self.expired()

    @property
    def status(self) -> str:
        """``active``, ``revoked`` or ``expired``, as lists show it."""
        return "revoked" if self.revoked is not None else "expired" if self.expired() else "active"


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
