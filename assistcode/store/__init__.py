"""The project store: one SQLite file (WAL) per project, changed only through named, append-only migrations."""
from .db import DB_NAME, connect, migrate, schema, transaction
from .migrations import MIGRATIONS

__all__ = ["DB_NAME", "MIGRATIONS", "connect", "migrate", "schema", "transaction"]
