"""What can go wrong opening or using the database, as exceptions whose message says which URL and why."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which URL and why."""


class SchemaMismatch(StoreError):
    """The database's schema revision is not the one this code was written for.

    ``current`` is the database's revision (None when it has no netboot tables at all), ``head`` the code's.
    """

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(message)


class SchemaTooOld(SchemaMismatch):
    """The database is behind this code: ``netboot db upgrade`` brings it forward."""


class SchemaTooNew(SchemaMismatch):
    """The database was upgraded by a newer netboot: this code must not write to it."""
