"""Leases and records shared by Lifecycle replicas, on SQLite and PostgreSQL: the watcher's
lease, deployments' claims failed when their process is gone (each exactly once, even with two
replicas sweeping at once), the login rate limit across replicas, and migrations started by
several processes at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import AdminBootstrap, ensure_admin
from racetrack_core.lifecycle.deployments.records import Recorder, admit_deployment, version_lock
from racetrack_core.lifecycle.deployments.request import DeployRequest
from racetrack_core.lifecycle.leases import Leases
from racetrack_core.lifecycle.login_throttle import LoginThrottle, TooManyAttempts
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate, table_names
from racetrack_core.storage.models import AuditEvent, Deployment, DeploymentStatus, User


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def claimed(engine: Engine, leases: Leases, phase: str = "building") -> str:
    row = Deployment(
        job_name="primer",
        job_version="1.0.0",
        manifest_yaml="name: primer\n",
        phase=phase,
        claimed_by=leases.holder,
        lease_expires_at=leases.expiry(),
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        return row.id


def test_one_replica_holds_a_named_lease_until_it_expires(db: Engine) -> None:
    clock = Clock()
    first, second = Leases(db, "a", 30, clock), Leases(db, "b", 30, clock)
    assert first.hold("job-watcher")
    assert not second.hold("job-watcher")
    clock.now += 20
    assert first.hold("job-watcher")  # renewed: good for 30 s more
    clock.now += 20
    assert not second.hold("job-watcher")
    clock.now += 11
    assert second.hold("job-watcher")  # the first stopped renewing
    assert not first.hold("job-watcher")
    second.release("job-watcher")
    assert first.hold("job-watcher")


def test_a_deployment_whose_replica_stopped_beating_is_failed_with_the_reason(db: Engine) -> None:
    clock = Clock()
    dead, alive = Leases(db, "dead-replica", 30, clock), Leases(db, "alive-replica", 30, clock)
    abandoned, kept = claimed(db, dead), claimed(db, alive)
    clock.now += 20
    assert alive.renew([kept]) == set()
    assert alive.fail_abandoned() == []
    clock.now += 15
    assert alive.fail_abandoned() == [abandoned]
    with Session(db) as session:
        row = session.get(Deployment, abandoned)
        assert row is not None
        assert row.status == DeploymentStatus.FAILED
        assert "dead-replica" in str(row.error)
        assert "at phase 'building'" in str(row.error)
        assert "deploy again" in str(row.error)
        other = session.get(Deployment, kept)
        assert other is not None
        assert other.status == DeploymentStatus.IN_PROGRESS
    # The replica that lost its claim learns it on its next heartbeat.
    assert dead.renew([abandoned]) == {abandoned}


def test_two_replicas_sweeping_at_once_fail_each_abandoned_deployment_once(db: Engine) -> None:
    clock = Clock()
    dead = Leases(db, "dead-replica", 5, clock)
    ids = {claimed(db, dead) for _ in range(12)}
    clock.now += 10
    sweepers = [Leases(db, f"sweeper-{n}", 5, clock) for n in range(2)]
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.fail_abandoned())) for s in sweepers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    swept = [i for result in results for i in result]
    assert sorted(swept) == sorted(ids)  # every one, none twice
    with Session(db) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.kind == "deployment_failed"))
        assert len(list(events)) == len(ids)


def test_the_login_rate_limit_holds_across_replicas(db: Engine) -> None:
    clock = Clock()
    replicas = [LoginThrottle(db, account_limit=3, window=60, clock=clock) for _ in range(2)]
    for attempt in range(3):
        replicas[attempt % 2].check("ada", "10.0.0.1")
        replicas[attempt % 2].failed("ada", "10.0.0.1")
    for replica in replicas:
        with pytest.raises(TooManyAttempts, match="account ada; try again in 60 s"):
            replica.check("ada", "10.0.0.2")
    clock.now += 61
    replicas[1].check("ada", "10.0.0.2")
    replicas[0].failed("ada", "10.0.0.2")
    replicas[1].succeeded("ada")
    replicas[0].check("ada", "10.0.0.2")


def test_migrations_started_at_once_by_several_replicas_all_succeed(database_url: str) -> None:
    engines = [connect(database_url, pool_size=2, max_overflow=0) for _ in range(3)]
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert "lease" in table_names(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


def test_a_pool_size_below_one_is_refused_with_the_setting_named() -> None:
    from racetrack_core.storage.database import DatabaseError

    with pytest.raises(DatabaseError, match="database_pool_size must be at least 1"):
        connect("postgresql://u@127.0.0.1/db", pool_size=0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_pool_settings_from_the_environment_size_lifecycles_pool(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings.load(
        {"home": str(tmp_path / "home")},
        {
            "RACETRACK_DATABASE_URL": database_url,
            "RACETRACK_DATABASE_POOL_SIZE": "3",
            "RACETRACK_DATABASE_MAX_OVERFLOW": "2",
        },
    )
    with TestClient(create_app(settings, PluginManager())) as client:
        engine = client.app.state.service.engine  # type: ignore[attr-defined]
        assert isinstance(engine.pool, QueuePool)
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)


def test_a_late_replica_does_not_overwrite_the_failure_of_its_deployment(db: Engine) -> None:
    clock = Clock()
    late, other = Leases(db, "late-replica", 30, clock), Leases(db, "other-replica", 30, clock)
    deployment_id = claimed(db, late)
    clock.now += 31
    assert other.fail_abandoned() == [deployment_id]
    recorder = Recorder(db, deployment_id, secrets=[])
    recorder.line("still building")
    recorder.done()
    with Session(db) as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        assert row.status == DeploymentStatus.FAILED
        assert "still building" not in row.build_log


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_held_job_version_admits_no_deployment_from_another_process_until_released(
    db: Engine, database_url: str
) -> None:
    """What a delete holds on PostgreSQL: another Lifecycle's admission of that version waits
    for it (SQLite has one process, whose pipeline holds the version itself)."""
    other = connect(database_url)  # another replica's pool
    request = DeployRequest(
        manifest={"name": "primer", "version": "1.0.0"},
        job_type=PluginManager().load().job_types.resolve("python3:latest"),
        target="local",
        deployed_by="admin",
    )
    admitted: list[str] = []
    try:
        with version_lock(db, "primer", "1.0.0"):
            admitting = threading.Thread(
                target=lambda: admitted.append(admit_deployment(other, request, force=True))
            )
            admitting.start()
            admitting.join(1.0)
            assert admitted == [], "admitted while the version was held"
            with version_lock(db, "primer", "2.0.0"):
                pass  # another version is not held
        admitting.join(10)
        assert len(admitted) == 1
    finally:
        other.dispose()


def test_replicas_first_started_at_once_make_one_admin_and_all_start(
    db: Engine, database_url: str, tmp_path: Path
) -> None:
    """Lifecycles with homes of their own (no shared lock file) starting on an empty database
    at once: one creates the admin, the others find it (one of them failed on the admin's
    unique name, and its replica did not start)."""
    engines = [connect(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    outcomes: list[object] = []

    def first_start(index: int) -> None:
        start.wait()
        try:
            outcomes.append(ensure_admin(engines[index], tmp_path / f"home-{index}", None))
        except Exception as error:  # the outcome under test
            outcomes.append(error)

    threads = [threading.Thread(target=first_start, args=(i,)) for i in range(len(engines))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for engine in engines:
            engine.dispose()
    assert all(isinstance(outcome, AdminBootstrap) for outcome in outcomes), outcomes
    created = [o for o in outcomes if isinstance(o, AdminBootstrap) and o.created]
    assert len(created) == 1, outcomes
    # Only the replica whose admin was kept wrote a password file: others' would be wrong.
    files = sorted(path.parent.name for path in tmp_path.glob("home-*/admin-password"))
    kept = created[0].password_file
    assert kept is not None
    assert files == [kept.parent.name]
    with Session(db) as session:
        assert len(session.exec(select(User).where(User.username == "admin")).all()) == 1
