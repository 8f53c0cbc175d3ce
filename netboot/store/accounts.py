"""Web accounts: users, API tokens, browser sessions and the audit log.

Passwords are stored as salted scrypt hashes (``scrypt$n$r$p$salt$hash``; n=2**15, r=8, p=1), API tokens
and session ids only as SHA-256 digests, so a copy of the database gives nobody a way in. Tokens are shown
once, when made.

Every read here raises on a database problem; callers in the web app turn any exception into "nobody gets
in" (see :mod:`netboot.webapp.auth`), never into "anybody gets in".
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

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from netboot.plain import plain
from netboot.store.schema import metadata

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

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created", Float, nullable=False),
    #: bumped when the password changes: every session made before then stops working
    Column("generation", Integer, nullable=False, default=0),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    #: the first characters of the secret, to recognise a token in lists (not enough to use it)
    Column("hint", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("last_used", Float, nullable=True),
    Column("revoked", Float, nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("generation", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Column("ok", Boolean, nullable=False, default=True),
    Index("ix_audit_time", "time"),
)


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


def _user(r: Any) -> User:
    return User(id=r["id"], name=r["name"], role=r["role"], created=r["created"], generation=r["generation"])


# -------------------------------------------------------------------------------------------- repos


class UserRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def list(self) -> list[User]:
        with self._engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.name)).mappings()]

    def get(self, name: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return _user(row) if row else None

    def by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return _user(row) if row else None

    def add(self, name: str, password: str, role: str = "admin") -> User:
        check_user_name(name)
        check_new_password(password)
        check_role(role)
        now = time.time()
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    insert(users).values(
                        name=name, password=hash_password(password), role=role, created=now, generation=0
                    )
                )
        except IntegrityError:
            raise AccountError("name", f"user {name!r} already exists") from None
        key = result.inserted_primary_key
        assert key is not None
        return User(id=int(key[0]), name=name, role=role, created=now)

    def set_password(self, name: str, password: str) -> None:
        check_new_password(password)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(users)
                .where(users.c.name == name)
                .values(password=hash_password(password), generation=users.c.generation + 1)
            ).rowcount
        if not done:
            raise AccountError("name", f"no user {name!r}")

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        with self._engine.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(role=role)).rowcount
        if not done:
            raise AccountError("name", f"no user {name!r}")

    def remove(self, name: str) -> bool:
        """Remove a user with their tokens and sessions."""
        with self._engine.begin() as conn:
            row = conn.execute(select(users.c.id).where(users.c.name == name)).first()
            if row is None:
                return False
            conn.execute(delete(api_tokens).where(api_tokens.c.user_id == row[0]))
            conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row[0]))
            conn.execute(delete(users).where(users.c.id == row[0]))
        return True

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None; takes as long for unknown names."""
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            burn_time(password)
            return None
        if not check_password(row["password"], password):
            return None
        return _user(row)


class TokenRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, user: User, name: str) -> tuple[ApiToken, str]:
        """A new token for ``user``; returns it with its secret (shown once, stored only hashed)."""
        name = name.strip()
        if not name or len(name) > 128:
            raise AccountError("name", "a token needs a label of 1-128 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        hint = secret[: len(TOKEN_PREFIX) + 6]
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(api_tokens).values(
                    user_id=user.id, name=name, digest=digest(secret), hint=hint, created=now
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return ApiToken(int(key[0]), user.id, user.name, name, hint, now, None, None), secret

    def _query(self) -> Any:
        return select(api_tokens, users.c.name.label("user")).join(users, users.c.id == api_tokens.c.user_id)

    @staticmethod
    def _token(r: Any) -> ApiToken:
        return ApiToken(
            id=r["id"],
            user_id=r["user_id"],
            user=r["user"],
            name=r["name"],
            hint=r["hint"],
            created=r["created"],
            last_used=r["last_used"],
            revoked=r["revoked"],
        )

    def list(self, user: User | None = None) -> list[ApiToken]:
        q = self._query().order_by(api_tokens.c.id)
        if user is not None:
            q = q.where(api_tokens.c.user_id == user.id)
        with self._engine.connect() as conn:
            return [self._token(r) for r in conn.execute(q).mappings()]

    def get(self, token_id: int) -> ApiToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(self._query().where(api_tokens.c.id == token_id)).mappings().first()
        return self._token(row) if row else None

    def revoke(self, token_id: int) -> bool:
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == token_id, api_tokens.c.revoked.is_(None))
                    .values(revoked=time.time())
                ).rowcount
            )

    def authenticate(self, secret: str) -> tuple[ApiToken, User] | None:
        """The token and its user for a presented secret, or None (unknown, revoked, malformed)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        q = (
            select(
                api_tokens,
                users.c.name.label("user"),
                users.c.role,
                users.c.created.label("ucreated"),
                users.c.generation,
            )
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.digest == digest(secret))
        )
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None or row["revoked"] is not None:
            return None
        token = self._token(row)
        now = time.time()
        if token.last_used is None or now - token.last_used > 60:
            with self._engine.begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used=now))
        user = User(
            id=row["user_id"],
            name=row["user"],
            role=row["role"],
            created=row["ucreated"],
            generation=row["generation"],
        )
        return token, user


class SessionRepo:
    """Server-side records of browser sessions: the cookie carries a random id, the database its hash."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, user: User, lifetime: float = SESSION_LIFETIME) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires < now))
            conn.execute(
                insert(web_sessions).values(
                    digest=digest(sid),
                    user_id=user.id,
                    generation=user.generation,
                    created=now,
                    expires=now + lifetime,
                )
            )
        return sid

    def user(self, sid: str) -> User | None:
        """The signed-in user of session ``sid``, or None (unknown, expired, password changed since)."""
        q = (
            select(users, web_sessions.c.generation.label("sgen"), web_sessions.c.expires)
            .join(web_sessions, web_sessions.c.user_id == users.c.id)
            .where(web_sessions.c.digest == digest(sid))
        )
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None or row["expires"] < time.time() or row["sgen"] != row["generation"]:
            return None
        return _user(row)

    def end(self, sid: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.digest == digest(sid)))


class AuditRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(
        self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None, *, ok: bool = True
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(audit).values(
                    time=time.time(),
                    actor=actor[:128],
                    action=action[:64],
                    target=target,
                    detail=plain(detail or {}),
                    ok=ok,
                )
            )

    def list(
        self,
        *,
        limit: int = 200,
        before_id: int | None = None,
        actor: str | None = None,
        target: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first."""
        q = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(audit.c.id < before_id)
        if actor:
            q = q.where(audit.c.actor == actor)
        if target:
            q = q.where(audit.c.target == target)
        with self._engine.connect() as conn:
            return [
                AuditEntry(
                    id=r["id"],
                    time=r["time"],
                    actor=r["actor"],
                    action=r["action"],
                    target=r["target"],
                    detail=dict(r["detail"] or {}),
                    ok=bool(r["ok"]),
                )
                for r in conn.execute(q).mappings()
            ]
