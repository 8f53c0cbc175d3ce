"""The audit log: who changed what through the web app or the API, and whether it was allowed."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, insert, select

from netboot.plain import plain
from netboot.store.accounts import AuditEntry
from netboot.store.schema import audit


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
