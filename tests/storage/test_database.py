"""The engine and the migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from racetrack_core.storage.database import DatabaseError, connect, downgrade, migrate, table_names
from racetrack_core.storage.models import Deployment, DeploymentStatus, Job, JobFamily, User

TABLES = [
    "alembic_version",
    "async_job_call",
    "audit_event",
    "auth_token",
    "deployment",
    "external_consumer",
    "installed_plugin",
    "job",
    "job_family",
    "lease",
    "login_failure",
    "permission",
    "public_endpoint_request",
    "replica_port",
    "user_account",
]


def test_migrations_create_every_table(engine: Engine) -> None:
    migrate(engine)
    assert table_names(engine) == TABLES


def test_migrations_match_the_models(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing_and_downgrade_removes_everything(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    downgrade(engine, "base")
    assert table_names(engine) == ["alembic_version"]
    migrate(engine)
    assert table_names(engine) == TABLES


def test_rows_round_trip_and_constraints_hold(engine: Engine) -> None:
    migrate(engine)
    with Session(engine) as session:
        family = JobFamily(name="primer")
        session.add(family)
        session.commit()
        family_id = family.id
        session.add(
            Job(
                family_id=family_id,
                name="primer",
                version="0.0.1",
                manifest_yaml="name: primer\n",
                job_type="python3:1.0.0",
                infrastructure_target="local",
            )
        )
        session.add(Deployment(job_name="primer", job_version="0.0.1", manifest_yaml="x"))
        session.commit()
        job = session.exec(select(Job).where(Job.name == "primer")).one()
        assert job.status == "starting"
        assert job.created_at > 0
        deployment = session.exec(select(Deployment)).one()
        assert deployment.status == DeploymentStatus.IN_PROGRESS
        assert deployment.warnings == "[]"

    with Session(engine) as session:
        session.add(
            Job(
                family_id=family_id,
                name="primer",
                version="0.0.1",
                manifest_yaml="",
                job_type="python3:1.0.0",
                infrastructure_target="local",
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()

    with Session(engine) as session:
        session.add(
            Job(
                family_id="no-such-family",
                name="orphan",
                version="1.0.0",
                manifest_yaml="",
                job_type="python3:1.0.0",
                infrastructure_target="local",
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()

    with Session(engine) as session:
        session.add(User(username="a@example.com", password_hash="x"))
        session.add(User(username="a@example.com", password_hash="y"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    engine = connect(f"sqlite:///{tmp_path}/wal.db")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "the database URL is malformed; use sqlite:///"),
        ("mysql://root@127.0.0.1/racetrack", "database 'mysql' is not supported; use sqlite:///"),
    ],
)
def test_bad_database_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        connect(url)
