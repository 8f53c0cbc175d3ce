"""Browser sessions: the cookie carries a random id, the database only its digest, the user and an expiry.

A session also records the user's password generation when it was made, so changing a password ends every
session made before.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import Engine, delete, insert, select

from netboot.store.accounts import SESSION_LIFETIME, User, digest, user_from_row
from netboot.store.schema import users, web_sessions


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
        return user_from_row(row)

    def end(self, sid: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.digest == digest(sid)))
