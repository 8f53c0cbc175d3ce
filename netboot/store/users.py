"""Web users: add, list, change and remove accounts, and check a password (in constant-looking time)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from netboot.store.accounts import (
    AccountError,
    User,
    burn_time,
    check_new_password,
    check_password,
    check_role,
    check_user_name,
    hash_password,
    user_from_row,
)
from netboot.store.schema import api_tokens, users, web_sessions


class UserRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def list(self) -> list[User]:
        with self._engine.connect() as conn:
            return [user_from_row(r) for r in conn.execute(select(users).order_by(users.c.name)).mappings()]

    def get(self, name: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return user_from_row(row) if row else None

    def by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return user_from_row(row) if row else None

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
        return user_from_row(row)
