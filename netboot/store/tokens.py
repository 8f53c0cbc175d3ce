"""API tokens: made with a secret shown once, stored as a digest, revoked by id, checked per request."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import Engine, insert, select, update

from netboot.store.accounts import TOKEN_PREFIX, AccountError, ApiToken, User, digest
from netboot.store.schema import api_tokens, users


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
