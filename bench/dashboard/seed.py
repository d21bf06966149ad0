"""The Dashboard benchmark's database: 1,000 job records as deployments would leave them.

``seed(database_url)`` migrates a new database and writes, in one transaction and with the
storage models (nothing is built or started): 300 job families of 1 to 5 versions each, 1,000
versions in all, each with its deployment and build log, plus failed deployments, one in
progress per starting job, users, external consumers (ESCs) with tokens, grants, public
endpoint requests and the audit events that all of this would have left. Every 20th version
has a long manifest (about 200 environment variables, labels and endpoints) and a long build
log. The same seed always gives the same rows but for their ids.

No job has a replica: the job watcher, which reconciles only jobs that have one, leaves these
records as they are (it still reads every job row on each of its rounds).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, SQLModel

from racetrack_core.security import hash_password, new_token, token_digest, token_hint
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import (
    AuditEvent,
    AuthToken,
    Deployment,
    DeploymentStatus,
    ExternalConsumer,
    Job,
    JobFamily,
    JobStatus,
    Permission,
    PublicEndpointRequest,
    Scope,
    SubjectKind,
    User,
)

FAMILIES = 300
JOBS = 1000
FAILED_DEPLOYMENTS = 120
USERS = 60
CONSUMERS = 25
#: One version in this many gets a long manifest and a long build log.
LONG_EVERY = 20
DAY = 86400.0

# One string is easier to read than 52 quoted words.
WORDS = (  # noqa: SIM905
    "billing forecast ledger invoice churn fraud score route geo image resize text summary "
    "search rank price quote stock order cart payment refund report audit sensor weather "
    "traffic energy grid pump vision speech translate classify cluster anomaly detect embed "
    "vector graph match label tag sentiment news feed mail notify sms ocr parse extract"
).split()
PHASES = (
    "queued",
    "fetching source",
    "validating manifest",
    "building",
    "starting",
    "waiting for live and ready",
    "switching traffic",
    "post-deploy hooks",
)
JOB_STATUSES = (
    (JobStatus.RUNNING, 0.85),
    (JobStatus.ERROR, 0.06),
    (JobStatus.LOST, 0.05),
    (JobStatus.STARTING, 0.04),
)

JOB_ERRORS = {
    JobStatus.ERROR: "the job's replica exited with 1: No module named 'numpy'",
    JobStatus.LOST: "the job's replica is not running",
}


@dataclass
class Seeded:
    """What the benchmark needs to know about the rows: names and ids to open pages with."""

    #: Every family's versions, by family name.
    versions: dict[str, list[str]]
    #: (name, version) of a running job whose manifest is long.
    long_job: tuple[str, str]
    #: That job's deployment, whose build log is long.
    long_deployment: str
    #: Sizes in bytes of that manifest and that build log.
    long_sizes: tuple[int, int]
    counts: dict[str, int] = field(default_factory=dict)


def seed(database_url: str, seed_value: int = 7) -> Seeded:
    """Create the schema at ``database_url`` and fill it; what was written."""
    rng = random.Random(seed_value)  # noqa: S311 (rows to reproduce, not secrets)
    engine = connect(database_url)
    migrate(engine)
    families: list[JobFamily] = []
    now = time.time()
    names = family_names(rng)
    owners = [f"{first}@example.com" for first in rng.sample(WORDS, 40)]
    sizes = version_counts(rng)
    jobs: list[Job] = []
    deployments: list[Deployment] = []
    for name, size in zip(names, sizes, strict=True):
        family = JobFamily(name=name, created_at=now - rng.uniform(30, 400) * DAY)
        families.append(family)
        owner = rng.choice(owners)
        for index in range(size):
            version = f"{1 + index // 3}.{index % 3}.{rng.randint(0, 9)}"
            long = (len(jobs) + 1) % LONG_EVERY == 0
            job, deployment = job_rows(rng, now, family, version, owner, long)
            jobs.append(job)
            deployments.append(deployment)
    for _ in range(FAILED_DEPLOYMENTS):
        job = rng.choice(jobs)
        deployments.append(failed_deployment(rng, now, job))
    subjects, tokens, grants, events = people(rng, now, names, owners)
    public = public_endpoints(rng, now, jobs)
    events += [
        AuditEvent(
            time=deployment.created_at,
            kind="job_deployed"
            if deployment.status == DeploymentStatus.DONE
            else "deployment_failed",
            actor=deployment.deployed_by,
            job_name=deployment.job_name,
            job_version=deployment.job_version,
            details=json.dumps({"deployment_id": deployment.id}),
        )
        for deployment in deployments
        if deployment.status != DeploymentStatus.IN_PROGRESS
    ]
    with Session(engine, expire_on_commit=False) as session:
        # In the order of the foreign keys: the models declare no relationships to sort by.
        for batch in (
            families,
            jobs,
            [*deployments, *subjects, *tokens, *grants, *public, *events],
        ):
            session.add_all(batch)
            session.flush()
        session.commit()
    engine.dispose()
    long_job = next(
        job for job in jobs if len(job.manifest_yaml) > 5000 and job.status == JobStatus.RUNNING
    )
    counts = {
        "job families": len(names),
        "job versions": len(jobs),
        "deployments": len(deployments),
        "users": sum(isinstance(row, User) for row in subjects),
        "external consumers": sum(isinstance(row, ExternalConsumer) for row in subjects),
        "grants": len(grants),
        "public endpoint requests": len(public),
        "audit events": len(events),
    }
    long_log = next(d.build_log for d in deployments if d.id == long_job.deployment_id)
    versions: dict[str, list[str]] = {}
    for job in jobs:
        versions.setdefault(job.name, []).append(job.version)
    return Seeded(
        versions,
        (long_job.name, long_job.version),
        str(long_job.deployment_id),
        (len(long_job.manifest_yaml), len(long_log)),
        counts,
    )


def family_names(rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < FAMILIES:
        names.add("-".join(rng.sample(WORDS, rng.choice((2, 2, 3)))))
    return sorted(names)


def version_counts(rng: random.Random) -> list[int]:
    """1 to 5 versions per family, JOBS in all."""
    sizes = [rng.randint(1, 5) for _ in range(FAMILIES)]
    while sum(sizes) != JOBS:
        index = rng.randrange(FAMILIES)
        step = 1 if sum(sizes) < JOBS else -1
        if 1 <= sizes[index] + step <= 5:
            sizes[index] += step
    return sizes


def manifest(rng: random.Random, name: str, version: str, owner: str, long: bool) -> str:
    """``sample/python-primer/job.yaml`` under another name; a long one has much more."""
    lines = [
        f"name: {name}",
        f"owner_email: {owner}",
        f"version: {version}",
        "jobtype: python3:latest",
        "git:",
        "  remote: https://github.com/TheRacetrack/racetrack",
        f"  directory: sample/{name}",
        "jobtype_extra:",
        "  entrypoint_path: 'entrypoint.py'",
        "  entrypoint_class: 'JobEntrypoint'",
    ]
    if not long:
        return "\n".join(lines) + "\n"
    lines += ["  requirements_path: 'requirements.txt'", "runtime_env:"]
    lines += [
        f"  {rng.choice(WORDS).upper()}_SETTING_{i}: '{rng.random():.12f}'" for i in range(200)
    ]
    lines += ["labels:"] + [f"  team.example.com/{word}: '{rng.choice(WORDS)}'" for word in WORDS]
    lines += ["public_endpoints:"] + [f"  - /api/v1/{word}" for word in WORDS[:30]]
    lines += ["system_dependencies:"] + [f"  - lib{word}0" for word in WORDS[:20]]
    lines += ["resources:", "  memory_max: 2Gi", "  cpu_max: '2'", "replicas: 2"]
    return "\n".join(lines) + "\n"


def build_log(rng: random.Random, name: str, long: bool) -> str:
    packages = [f"{word}-{rng.randint(0, 9)}.{rng.randint(0, 30)}" for word in WORDS]
    lines = [
        f"Fetching the source of {name}",
        "Using CPython 3.11.7",
        "Creating virtual environment",
    ]
    lines += [f"Resolved {len(packages)} packages in {rng.randint(80, 900)}ms"]
    lines += [f" + {package}" for package in packages]
    if long:
        lines += [
            f"Compiling {rng.choice(WORDS)}/{rng.choice(WORDS)}_{i}.py ({rng.randint(1, 900)})"
            for i in range(2000)
        ]
    lines.append(f"Installed {len(packages)} packages in {rng.randint(100, 4000)}ms")
    return "\n".join(lines) + "\n"


def job_rows(
    rng: random.Random, now: float, family: JobFamily, version: str, owner: str, long: bool
) -> tuple[Job, Deployment]:
    created = rng.uniform(family.created_at, now - 600)
    status = rng.choices([s for s, _ in JOB_STATUSES], [w for _, w in JOB_STATUSES])[0]
    deployer = rng.choice((owner, owner, "admin"))
    text = manifest(rng, family.name, version, owner, long)
    in_progress = status == JobStatus.STARTING
    deployment = Deployment(
        job_name=family.name,
        job_version=version,
        status=DeploymentStatus.IN_PROGRESS if in_progress else DeploymentStatus.DONE,
        phase="building" if in_progress else "post-deploy hooks",
        phases=json.dumps(phase_times(rng, created, 4 if in_progress else len(PHASES))),
        build_log=build_log(rng, family.name, long),
        manifest_yaml=text,
        infrastructure_target="local",
        job_type="python3:1.0.0",
        deployed_by=deployer,
        created_at=created,
        updated_at=created + 3,
        finished_at=None if in_progress else created + rng.uniform(1, 40),
    )
    job = Job(
        family_id=family.id,
        name=family.name,
        version=version,
        status=status,
        manifest_yaml=text,
        job_type="python3:1.0.0",
        infrastructure_target="local",
        internal_name=f"http://127.0.0.1:{rng.randint(20000, 60000)}",
        error=JOB_ERRORS.get(status),
        deployed_by=deployer,
        deployment_timestamp=int(created),
        deployment_id=deployment.id,
        created_at=created,
        updated_at=rng.uniform(created, now),
        last_call_at=rng.choice((None, rng.uniform(created, now))),
    )
    deployment.job_id = job.id
    return job, deployment


def phase_times(rng: random.Random, start: float, count: int) -> list[list[Any]]:
    moments, at = [], start
    for phase in PHASES[:count]:
        moments.append([phase, at])
        at += rng.uniform(0.01, 8.0)
    return moments


def failed_deployment(rng: random.Random, now: float, job: Job) -> Deployment:
    created = rng.uniform(job.created_at, now)
    return Deployment(
        job_name=job.name,
        job_version=job.version,
        status=DeploymentStatus.FAILED,
        phase="building",
        phases=json.dumps(phase_times(rng, created, 4)),
        error="building failed: uv pip install exited with 1: No solution found when resolving "
        "dependencies",
        build_log=build_log(rng, job.name, False) + "error: No solution found\n",
        manifest_yaml=job.manifest_yaml,
        infrastructure_target="local",
        job_type="python3:1.0.0",
        deployed_by=job.deployed_by,
        created_at=created,
        updated_at=created + 5,
        finished_at=created + 5,
    )


def people(
    rng: random.Random, now: float, families: list[str], owners: list[str]
) -> tuple[list[SQLModel], list[AuthToken], list[Permission], list[AuditEvent]]:
    """Users and ESCs, their tokens (for ESCs), their grants, and the events they left."""
    password_hash = hash_password(new_token())  # one hash for all: nobody logs in as them
    subjects: list[SQLModel] = []
    tokens: list[AuthToken] = []
    grants: list[Permission] = []
    events: list[AuditEvent] = []
    for index, username in enumerate(
        [*owners, *(f"user{i}@example.com" for i in range(USERS - len(owners)))]
    ):
        created = now - rng.uniform(1, 400) * DAY
        active = index % 10 != 9
        subjects.append(
            User(
                username=username,
                password_hash=password_hash,
                is_active=active,
                is_staff=index < 3,
                created_at=created,
                last_login_at=rng.uniform(created, now) if active else None,
            )
        )
        events.append(AuditEvent(time=created, kind="user_registered", subject=username))
        if active:
            events.append(
                AuditEvent(
                    time=created + 600, kind="user_activated", actor="admin", subject=username
                )
            )
            for family in rng.sample(families, rng.randint(2, 8)):
                scope = rng.choice((Scope.READ_JOB, Scope.READ_JOB, Scope.DEPLOY_JOB))
                grants.append(grant(SubjectKind.USER, username, scope, family, created))
    for index in range(CONSUMERS):
        name = f"{rng.choice(WORDS)}-service-{index}"
        created = now - rng.uniform(1, 400) * DAY
        subjects.append(ExternalConsumer(name=name, created_at=created, created_by="admin"))
        for _ in range(rng.randint(1, 3)):
            token = new_token()
            tokens.append(
                AuthToken(
                    subject_kind=SubjectKind.ESC,
                    subject_name=name,
                    token_digest=token_digest(token),
                    hint=token_hint(token),
                    created_at=created,
                    expires_at=rng.choice((None, now + 90 * DAY)),
                )
            )
            events.append(
                AuditEvent(time=created, kind="token_created", actor="admin", subject=f"esc {name}")
            )
        for family in rng.sample(families, rng.randint(1, 6)):
            grants.append(grant(SubjectKind.ESC, name, Scope.CALL_JOB, family, created))
    events += [
        AuditEvent(
            time=row.created_at,
            kind="permission_granted",
            actor="admin",
            job_name=row.job_family,
            subject=f"{row.subject_kind} {row.subject_name}",
            details=json.dumps({"grant": {"scope": row.scope, "job_family": row.job_family}}),
        )
        for row in grants
    ]
    return subjects, tokens, grants, events


def grant(kind: SubjectKind, name: str, scope: Scope, family: str, at: float) -> Permission:
    return Permission(
        subject_kind=kind,
        subject_name=name,
        scope=scope,
        job_family=family,
        created_at=at,
        granted_by="admin",
    )


def public_endpoints(rng: random.Random, now: float, jobs: list[Job]) -> list[SQLModel]:
    rows: list[SQLModel] = []
    for job in rng.sample(jobs, 40):
        active = rng.random() < 0.7
        rows.append(
            PublicEndpointRequest(
                job_name=job.name,
                job_version=job.version,
                endpoint="/api/v1/perform",
                active=active,
                created_at=job.created_at,
                approved_by="admin" if active else None,
                approved_at=job.created_at + 3600 if active else None,
            )
        )
    return rows
