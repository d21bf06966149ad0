"""Racetrack's storage: table models, the database engine, and schema migrations.

SQLite (in WAL mode) by default, PostgreSQL through a ``postgresql://`` URL; the same models
and migrations serve both.
"""

from racetrack_core.storage.database import connect, migrate

__all__ = ["connect", "migrate"]
