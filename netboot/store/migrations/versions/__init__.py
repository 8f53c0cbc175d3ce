"""Schema revisions, one module each (alembic loads them by file, not by import)."""
