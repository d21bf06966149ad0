"""Deployments and the job watcher in-process, with real job processes on the local target.

The Lifecycle app runs under starlette's TestClient (its pipeline and watcher in threads);
jobs are real processes in uv environments, so these tests are marked slow.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.infrastructure import InfrastructureDriver, JobSpec, Replica
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.lifecycle.deployments import Pipeline
from racetrack_core.lifecycle.service import LifecycleService, replica_from_json
from racetrack_core.manifest import load_manifest
from racetrack_core.settings import Settings
from racetrack_core.source import pack_build_context
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import Job, SubjectKind
from tests.lifecycle.deployments.test_pipeline import running_deployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"
FAST_CRASHES = {"restart_backoff_seconds": 0.1, "crash_limit": 2, "crash_window_seconds": 60}


class Api:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"X-Racetrack-Auth": token}

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer: httpx.Response = self.client.request(
            method, f"/api/v1{path}", headers=self.headers, **kwargs
        )
        return answer

    @property
    def service(self) -> LifecycleService:
        service: LifecycleService = self.client.app.state.service  # type: ignore[attr-defined]
        return service

    def deploy(self, **body: Any) -> str:
        body.setdefault("manifest", load_manifest(PRIMER_DIR / "job.yaml").data)
        body.setdefault("build_context", pack_build_context(PRIMER_DIR))
        answer = self("POST", "/deploy", json=body)
        assert answer.status_code == 200, answer.text
        deployment_id: str = answer.json()["id"]
        return deployment_id

    def wait(self, deployment_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            record: dict[str, Any] = self("GET", f"/deploy/{deployment_id}").json()
            if record["status"] != "in_progress":
                return record
            time.sleep(0.1)
        raise AssertionError("the deployment did not finish")

    def job_status(self, until: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self("GET", "/job/primer/0.0.1").json()
            if job["status"] == until:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job status stayed {job.get('status')}, expected {until}")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        home=tmp_path / "home", job_watch_interval=0.2, targets={"local": FAST_CRASHES}
    )
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, settings.home, "a password for the test")
    token = issue_token(engine, SubjectKind.USER, "admin")
    with TestClient(create_app(settings, PluginManager(), engine)) as client:
        yield Api(client, token)
    engine.dispose()


def test_a_second_deployment_of_one_job_at_once_is_refused(api: Api) -> None:
    first = api.deploy()
    second = api("POST", "/deploy", json={"manifest": load_manifest(PRIMER_DIR / "job.yaml").data})
    assert second.status_code == 409
    assert second.json()["error"].startswith("job primer 0.0.1 is already being deployed")
    assert api.wait(first)["status"] == "done"


def test_a_vanished_job_is_lost(api: Api) -> None:
    assert api.wait(api.deploy())["status"] == "done"
    api.job_status("running")
    replica = replica_from_json(_replica_json(api, "primer", "0.0.1"))
    assert replica is not None

    api.service.driver("local").stop(replica)  # gone, and the driver no longer knows it
    lost = api.job_status("lost")
    assert lost["error"] == "the job's replica is not running"


def test_a_job_that_keeps_crashing_ends_in_error_with_its_last_output(
    api: Api, tmp_path: Path
) -> None:
    crashing = tmp_path / "crashing"
    crashing.mkdir()
    (crashing / "entrypoint.py").write_text(
        "import os\n"
        "class JobEntrypoint:\n"
        "    def __init__(self):\n"
        "        if os.path.exists(os.environ['CRASH_FLAG']):\n"
        "            print('crashing on purpose', flush=True)\n"
        "            os._exit(3)\n"
        "    def perform(self, number: int) -> bool:\n"
        "        return number > 1\n"
    )
    flag = tmp_path / "crash-now"
    manifest = {
        **load_manifest(PRIMER_DIR / "job.yaml").data,
        "runtime_env": {"CRASH_FLAG": str(flag)},
    }
    record = api.wait(api.deploy(manifest=manifest, build_context=pack_build_context(crashing)))
    assert record["status"] == "done", record
    replica = replica_from_json(_replica_json(api, "primer", "0.0.1"))
    assert replica is not None

    flag.touch()  # from now on every restart crashes in __init__
    os.kill(_pid_of(api, replica.id), signal.SIGKILL)
    job = api.job_status("error", timeout=60)
    assert "crashing on purpose" in job["error"]


def test_a_job_whose_start_up_fails_is_in_error_with_the_reason(api: Api, tmp_path: Path) -> None:
    failing = tmp_path / "failing"
    failing.mkdir()
    (failing / "entrypoint.py").write_text(
        "import os\n"
        "class JobEntrypoint:\n"
        "    def __init__(self):\n"
        "        if os.path.exists(os.environ['FAIL_FLAG']):\n"
        "            raise RuntimeError('the model file is missing')\n"
        "    def perform(self, number: int) -> bool:\n"
        "        return number > 1\n"
    )
    flag = tmp_path / "fail-now"
    manifest = {
        **load_manifest(PRIMER_DIR / "job.yaml").data,
        "runtime_env": {"FAIL_FLAG": str(flag)},
    }
    record = api.wait(api.deploy(manifest=manifest, build_context=pack_build_context(failing)))
    assert record["status"] == "done", record

    flag.touch()  # a redeploy whose __init__ fails is refused at once, keeping the old one
    started = time.monotonic()
    failed = api.wait(
        api.deploy(manifest=manifest, build_context=pack_build_context(failing), force=True)
    )
    assert failed["status"] == "failed"
    assert "the model file is missing" in failed["error"]
    assert time.monotonic() - started < 60
    assert api.job_status("running")["deployment_timestamp"] > 0


def test_a_replica_no_job_names_is_reported_as_orphaned(api: Api) -> None:
    assert api.wait(api.deploy())["status"] == "done"
    watcher = api.client.app.state.watcher  # type: ignore[attr-defined]
    driver, replica = _start_stray(api)
    try:
        watcher.reconcile()
        watcher.reconcile()  # unnamed two rounds running
        assert watcher.orphans() == [replica.id]
        assert api.job_status("running")["name"] == "primer"
    finally:
        driver.stop(replica)


def test_a_replica_a_deployment_still_holds_is_no_orphan(api: Api) -> None:
    assert api.wait(api.deploy())["status"] == "done"
    watcher = api.client.app.state.watcher  # type: ignore[attr-defined]
    pipeline: Pipeline = api.client.app.state.pipeline  # type: ignore[attr-defined]
    # Only this test's rounds: the background one would see the stray before it is marked.
    watcher._stop.set()
    watcher._thread.join()
    deployment = running_deployment(pipeline)
    driver, replica = _start_stray(api)
    try:
        with pipeline.in_flight(deployment, replica.id):
            watcher.reconcile()
            watcher.reconcile()
            assert watcher.orphans() == []
        watcher.reconcile()
        assert watcher.orphans() == []  # not yet: one round could be a deployment's gap
        watcher.reconcile()
        assert watcher.orphans() == [replica.id]
    finally:
        driver.stop(replica)


def test_the_replica_a_redeploy_replaced_is_no_orphan_while_it_is_retired(api: Api) -> None:
    """After a redeploy the old replica serves calls in flight until its retirement timer stops
    it; it is being retired, not orphaned."""
    watcher = api.client.app.state.watcher  # type: ignore[attr-defined]
    watcher._stop.set()
    watcher._thread.join()
    assert api.wait(api.deploy())["status"] == "done"
    assert api.wait(api.deploy(force=True))["status"] == "done"
    watcher.reconcile()
    watcher.reconcile()
    assert watcher.orphans() == []


def test_two_deletes_of_one_job_at_once_remove_it_once_and_answer_no_500(api: Api) -> None:
    """Both requests find the job and stop it; the one that comes second to the record finds
    it gone: 404 (or 200), never a 500, and the job is gone."""
    assert api.wait(api.deploy())["status"] == "done"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: api("DELETE", "/job/primer/0.0.1"), range(2)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses in ([200, 200], [200, 404]), [answer.text for answer in answers]
    assert api("GET", "/job/primer/0.0.1").status_code == 404


def test_a_deploy_sent_while_the_version_is_being_deleted_waits_for_the_delete(
    api: Api, tmp_path: Path
) -> None:
    """The delete holds the job version until its record is gone: a deploy of that version
    sent meanwhile is admitted after it, as a new job, and is the one left serving (it was
    admitted at once; the delete then removed its record and workspace, leaving its process
    running with no record)."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "entrypoint.py").write_text(
        "import time\n"
        "class JobEntrypoint:\n"
        "    def perform(self, seconds: float) -> bool:\n"
        "        time.sleep(seconds)\n"
        "        return True\n"
    )
    context = pack_build_context(slow)
    assert api.wait(api.deploy(build_context=context))["status"] == "done"
    replica = replica_from_json(_replica_json(api, "primer", "0.0.1"))
    assert replica is not None
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        # A call in flight keeps the stopping job alive (a graceful stop waits for it), so
        # the delete stays in the target's stop for several seconds.
        call = pool.submit(
            httpx.post,
            f"{replica.url}/pub/job/primer/0.0.1/api/v1/perform",
            json={"seconds": 6},
            timeout=30,
        )
        time.sleep(1)
        delete = pool.submit(api, "DELETE", "/job/primer/0.0.1")
        time.sleep(1.5)
        assert not delete.done(), "the delete ended before the deploy was sent"
        deploy = pool.submit(api.deploy, build_context=context, force=True)
        assert delete.result().status_code == 200, delete.result().text
        record = api.wait(deploy.result())
        call.result()
    assert record["status"] == "done", record
    job = api("GET", "/job/primer/0.0.1")
    assert job.status_code == 200, job.text
    assert job.json()["status"] == "running"
    serving = [
        state.replica.id
        for state in api.service.driver("local").replicas()
        if state.replica.name == "primer"
    ]
    now_serving = replica_from_json(_replica_json(api, "primer", "0.0.1"))
    assert now_serving is not None
    assert serving == [now_serving.id]


def _start_stray(api: Api) -> tuple[InfrastructureDriver, Replica]:
    """Start a replica of a job version that no record names, beside the deployed primer."""
    driver = api.service.driver("local")
    manifest = load_manifest(PRIMER_DIR / "job.yaml").data
    with Session(api.service.engine) as session:
        job = session.exec(select(Job).where(Job.name == "primer")).one()
        workspace = Path(str(job.workspace))
    stray = JobSpec(
        name="stray",
        version="1.0.0",
        manifest={**manifest, "name": "stray", "version": "1.0.0"},
        job_type=api.service.plugins.job_types.resolve("python3:latest"),
        workspace=workspace,
        env={"JOB_NAME": "stray", "JOB_VERSION": "1.0.0", "JOB_DEPLOYMENT_TIMESTAMP": "1"},
        deployment_id="stray",
        deployment_timestamp=1,
        state_dir=api.service.settings.home / "stray-state",
    )
    driver.prepare(stray, lambda line: None)
    return driver, driver.start(stray)


def _replica_json(api: Api, name: str, version: str) -> str | None:
    with Session(api.service.engine) as session:
        job = session.exec(select(Job).where(Job.name == name, Job.version == version)).one()
        return job.replica


def _pid_of(api: Api, replica_id: str) -> int:
    path = api.service.settings.home / "targets" / "local" / "replicas" / f"{replica_id}.json"
    pid: int = json.loads(path.read_text())["pid"]
    return pid


def test_a_manifest_in_the_original_spellings_deploys_with_its_deprecation_warnings(
    api: Api,
) -> None:
    """As racetrack-client 2.35.1 sends it: lang, python and image_type, as written."""
    manifest = {
        "name": "primer",
        "owner_email": "sample@example.com",
        "lang": "python3:latest",
        "image_type": "docker",
        "git": {"remote": "https://github.com/TheRacetrack/racetrack"},
        "python": {"entrypoint_path": "entrypoint.py", "entrypoint_class": "JobEntrypoint"},
        "extends": None,
    }
    record = api.wait(api.deploy(manifest=manifest))
    assert record["status"] == "done", record
    warnings = record["warnings"].splitlines()
    assert "field 'lang': deprecated, write 'jobtype: python3:latest' instead" in warnings[0]
    assert any(
        line.startswith("field 'python': deprecated, write its settings (entrypoint_path, ")
        and "under 'jobtype_extra:'" in line
        for line in warnings
    )
    assert any(line.startswith("field 'image_type': means nothing here") for line in warnings)
    stored = api("GET", "/job/primer/0.0.1").json()["manifest"]
    assert stored["jobtype"] == "python3:latest"
    assert stored["jobtype_extra"]["entrypoint_path"] == "entrypoint.py"
    assert not {"lang", "python", "image_type"} & set(stored)


def test_older_spellings_that_disagree_are_refused_naming_both_fields(api: Api) -> None:
    manifest = {
        **load_manifest(PRIMER_DIR / "job.yaml").data,
        "lang": "golang:latest",
    }
    answer = api("POST", "/deploy", json={"manifest": manifest})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "'lang' (golang:latest) and 'jobtype' (python3:latest) disagree" in error
