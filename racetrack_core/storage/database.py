"""The database engine and its migrations.

``connect(url)`` opens SQLite (WAL journal, foreign keys enforced) or PostgreSQL (psycopg 3);
``migrate(engine)`` brings the schema to the newest Alembic revision. Both are safe to call on
every start, and ``migrate`` from several processes at once: on PostgreSQL it holds an advisory
lock while it upgrades, so the replicas that start together migrate one after the other (the
later ones find nothing left to do).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url

from racetrack_core.errors import RacetrackError

MIGRATIONS = Path(__file__).parent / "migrations"

#: The PostgreSQL advisory lock that migrations hold (any constant; "racetrack" in ASCII).
MIGRATION_LOCK = 0x72616365747261
_SQLITE_MIGRATIONS = threading.Lock()


class DatabaseError(RacetrackError):
    """The database URL is malformed or names a database Racetrack does not support, or the
    SQLite file cannot be read."""


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database file."""
    return f"sqlite:///{path}"


def connect(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """Create the engine for ``url``: ``sqlite:///path`` or ``postgresql://user@host/db``.

    On PostgreSQL a process keeps up to ``pool_size`` connections open and opens up to
    ``max_overflow`` more under load (settings ``database_pool_size``, ``database_max_overflow``).
    """
    if pool_size < 1 or max_overflow < 0:
        raise DatabaseError(
            f"database_pool_size must be at least 1 (got {pool_size}) and "
            f"database_max_overflow at least 0 (got {max_overflow})"
        )
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(
            "the database URL is malformed; use sqlite:///path/to/file.db or "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "handle_error", _unreadable_is_a_disconnect)
        return engine
    if backend == "postgresql":
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
        )
    raise DatabaseError(
        f"database '{backend}' is not supported; use sqlite:///path/to/file.db or "
        "postgresql://user:password@host:5432/dbname"
    )


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


#: What SQLite says of a database file it cannot read: damaged, replaced by another kind of
#: file, or a directory (or a file without permission) where the file should be.
UNREADABLE = ("file is not a database", "database disk image is malformed", "unable to open")


def _unreadable_is_a_disconnect(context: ExceptionContext) -> None:
    """Treat an unreadable SQLite file as a lost connection: the pool drops its connections
    (each would keep failing, even once the file is readable again) and opens new ones."""
    if any(words in str(context.original_exception) for words in UNREADABLE):
        context.is_disconnect = True


def check_sqlite_file(engine: Engine) -> None:
    """DatabaseError naming the SQLite file and what to do, unless it can be read (or is not
    there yet: it is then created)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return
    path = Path(engine.url.database)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM sqlite_master"))
    except sqlalchemy.exc.DBAPIError as exc:
        if path.is_dir():
            reason = "it is a directory"
        elif "not a database" in str(exc) or "malformed" in str(exc):
            reason = "it is not a SQLite database (or it is damaged)"
        else:
            reason = str(exc.orig) if exc.orig is not None else type(exc).__name__
        raise DatabaseError(
            f"cannot read the SQLite database {path}: {reason}. Restore it from a backup, or "
            "move it away to start with an empty database; the user running Racetrack must "
            "be able to read and write it and its folder"
        ) from None


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (the newest by default), one process at a time."""
    if engine.dialect.name != "postgresql":
        check_sqlite_file(engine)
        # A SQLite database belongs to one process: a lock in it serializes the upgrades.
        with _SQLITE_MIGRATIONS:
            command.upgrade(_alembic_config(engine), revision)
        return
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(_alembic_config(engine), revision)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            holder.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``base`` removes every table)."""
    command.downgrade(_alembic_config(engine), revision)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
