"""API tokens: made with a secret shown once, stored as a digest, revoked by id, checked per request.

A token may expire (``expires``, a Unix time) and may act with less than its user's role (``role``); it
never acts with more (:func:`~netboot.store.accounts.effective_role`), also when its user is demoted later.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import Engine, insert, select, update

from netboot.store.accounts import (
    ROLE_RANK,
    TOKEN_PREFIX,
    AccountError,
    ApiToken,
    User,
    check_role,
    digest,
)
from netboot.store.schema import api_tokens, users


class TokenRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, user: User, name: str, *, lifetime: float | None = None, role: str | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for ``user``, working for ``lifetime`` seconds (None: until revoked) with ``role``
        (None: the user's); returns it with its secret (shown once, stored only hashed)."""
        name = name.strip()
        if not name or len(name) > 128:
            raise AccountError("name", "a token needs a label of 1-128 characters")
        if role is not None:
            check_role(role)
            if user.role not in ROLE_RANK or ROLE_RANK[role] > ROLE_RANK[user.role]:
                raise AccountError(
                    "role", f"a token of {user.name} ({user.role}) cannot have the {role} role"
                )
        if lifetime is not None and lifetime <= 0:
            raise AccountError("expires", "a token's lifetime must be positive")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        hint = secret[: len(TOKEN_PREFIX) + 6]
        expires = None if lifetime is None else now + lifetime
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(api_tokens).values(
                    user_id=user.id,
                    name=name,
                    digest=digest(secret),
                    hint=hint,
                    created=now,
                    expires=expires,
                    role=role,
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        made = ApiToken(int(key[0]), user.id, user.name, name, hint, now, None, None, expires, role)
        return made, secret

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
            expires=r["expires"],
            role=r["role"],
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
        """The token and its user for a presented secret, or None (unknown, revoked, expired, malformed).

        The user is as stored: what the token may do is :func:`~netboot.store.accounts.effective_role`
        of the two roles."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        q = (
            select(
                api_tokens,
                users.c.name.label("user"),
                users.c.role.label("urole"),
                users.c.created.label("ucreated"),
                users.c.generation,
            )
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.digest == digest(secret))
        )
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            return None
        token = self._token(row)
        now = time.time()
        if token.revoked is not None or token.expired(now):
            return None
        if token.last_used is None or now - token.last_used > 60:
            with self._engine.begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used=now))
        user = User(
            id=row["user_id"],
            name=row["user"],
            role=row["urole"],
            created=row["ucreated"],
            generation=row["generation"],
        )
        return token, user
