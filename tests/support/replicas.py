"""The replica checks that both replica tests run: two Lifecycles and two Pubs over one
PostgreSQL, as processes (``tests/e2e/test_replicas.py``) or as containers of Racetrack's own
image (``tests/deploy/test_own_replicas.py``).

A ``Cluster`` names its services ``lc1``, ``lc2``, ``pub1`` and ``pub2``; ``pub1`` asks ``lc1``
and ``pub2`` asks ``lc2``, so killing ``lc1`` also takes ``pub1``'s Lifecycle away.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context
from tests.conftest import _admin_dsn

PRIMER = Path(__file__).resolve().parents[2] / "sample" / "python-primer"
AUTH = "X-Racetrack-Auth"


class Cluster(Protocol):
    database_url: str

    def url(self, name: str) -> str:
        """``lc1``/``lc2``: Lifecycle's base URL (``.../lifecycle``); ``pub1``/``pub2``: Pub's."""
        ...

    def kill(self, name: str) -> None:
        """Kill the service at once (SIGKILL), as a crash would."""
        ...

    def log(self, name: str) -> str:
        """The end of the service's log, for assertion messages."""
        ...


def login(lifecycle: str, username: str, password: str) -> str:
    answer = httpx.post(
        f"{lifecycle}/api/v1/users/login",
        json={"username": username, "password": password},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def deploy(lifecycle: str, token: str, name: str) -> str:
    manifest = {**load_manifest(PRIMER / "job.yaml").data, "name": name, "version": "1.0.0"}
    body = {"manifest": manifest, "build_context": pack_build_context(PRIMER)}
    answer = httpx.post(f"{lifecycle}/api/v1/deploy", json=body, headers={AUTH: token}, timeout=60)
    assert answer.status_code in {200, 201, 202}, answer.text
    deployment_id: str = answer.json()["id"]
    return deployment_id


def deployment(lifecycle: str, token: str, deployment_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{lifecycle}/api/v1/deploy/{deployment_id}", headers={AUTH: token}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def wait_all(lifecycle: str, token: str, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = [deployment(lifecycle, token, i) for i in ids]
        if all(r["status"] != "in_progress" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def call(pub: str, token: str, name: str) -> httpx.Response:
    return httpx.post(
        f"{pub}/job/{name}/latest/api/v1/perform",
        json={"number": 7},
        headers={AUTH: token},
        timeout=30,
    )


def deploy_first(cluster: Cluster, token: str, name: str, timeout: float) -> None:
    """One job through ``lc2`` (it builds what the others reuse), then called through both Pubs."""
    lc2 = cluster.url("lc2")
    first = wait_all(lc2, token, [deploy(lc2, token, name)], timeout=timeout)[0]
    assert first["status"] == "done", f"{first}\n{cluster.log('lc2')}"
    for pub in ("pub1", "pub2"):
        answer = call(cluster.url(pub), token, name)
        assert answer.status_code == 200, f"{pub}: {answer.text}\n{cluster.log(pub)}"


def deploy_twenty_at_once(cluster: Cluster, token: str, timeout: float) -> list[str]:
    """Twenty deployments requested at once, alternately through ``lc1`` and ``lc2``: each
    finishes once (one deployment row, one "deployed" event per job), claimed by the Lifecycle
    that received it. Returns the jobs' names."""
    lc1, lc2 = cluster.url("lc1"), cluster.url("lc2")
    names = [f"rep-{n:02d}" for n in range(20)]
    through = {name: lc1 if n % 2 else lc2 for n, name in enumerate(names)}
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda n: deploy(through[n], token, n), names))
    records = wait_all(lc2, token, ids, timeout=timeout)
    assert [r["status"] for r in records] == ["done"] * 20, [
        (r.get("job_name", r["id"]), r["error"]) for r in records
    ] + [cluster.log("lc1"), cluster.log("lc2")]
    listed = httpx.get(f"{lc1}/api/v1/job", headers={AUTH: token}, timeout=30).json()
    assert set(names) <= {j["name"] for j in listed}
    with psycopg.connect(_admin_dsn(cluster.database_url)) as conn:
        rows = conn.execute("SELECT job_name, count(*) FROM deployment GROUP BY job_name")
        per_job: dict[str, int] = dict(rows.fetchall())
        deployed: dict[str, int] = dict(
            conn.execute(
                "SELECT job_name, count(*) FROM audit_event WHERE kind = 'job_deployed' "
                "GROUP BY job_name"
            ).fetchall()
        )
        claims = conn.execute(
            "SELECT job_name, claimed_by FROM deployment WHERE job_name LIKE 'rep-%'"
        ).fetchall()
    assert {n: per_job.get(n) for n in names} == dict.fromkeys(names, 1)
    assert {n: deployed.get(n) for n in names} == dict.fromkeys(names, 1)
    # Split across both: each Lifecycle ran the ones it received, and only those.
    holders: dict[str, set[str | None]] = {through[name]: set() for name in names}
    for name, claimed_by in claims:
        holders[through[name]].add(claimed_by)
    assert all(len(h) == 1 and None not in h for h in holders.values()), holders
    assert holders[lc1] != holders[lc2], holders
    return names


def check_login_limit(cluster: Cluster) -> None:
    """Failures made through either Lifecycle count together: five, then 429 on both."""
    lc1, lc2 = cluster.url("lc1"), cluster.url("lc2")
    for attempt in range(5):
        refused = httpx.post(
            f"{lc1 if attempt % 2 else lc2}/api/v1/users/login",
            json={"username": "mallory@example.com", "password": f"wrong {attempt}"},
            timeout=30,
        )
        assert refused.status_code == 401, refused.text
    for lifecycle in (lc1, lc2):
        limited = httpx.post(
            f"{lifecycle}/api/v1/users/login",
            json={"username": "mallory@example.com", "password": "a guess"},
            timeout=30,
        )
        assert limited.status_code == 429, limited.text


def kill_during_deployments(
    cluster: Cluster, token: str, serving: str, lease_ttl: float, started: float = 0.3
) -> list[dict[str, Any]]:
    """Kill ``lc1`` ``started`` seconds after it admitted four deployments, while both Pubs are
    called (job ``serving``): every call succeeds, each Pub answers after the kill too, and
    within about ``lease_ttl`` no deployment is left in progress (each is done, or failed with
    the reason). Returns the four records."""
    failures: list[str] = []
    answered: dict[str, list[float]] = {"pub1": [], "pub2": []}
    stop = threading.Event()

    def keep_calling() -> None:
        while not stop.is_set():
            for pub in ("pub1", "pub2"):
                answer = call(cluster.url(pub), token, serving)
                if answer.status_code != 200:
                    failures.append(f"{pub}: {answer.status_code} {answer.text[:200]}")
                else:
                    answered[pub].append(time.monotonic())
            time.sleep(0.05)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        victims = [deploy(cluster.url("lc1"), token, f"victim-{n}") for n in range(4)]
        time.sleep(started)  # admitted and under way: the phases have started
        cluster.kill("lc1")
        killed_at = time.monotonic()
        ended = wait_all(cluster.url("lc2"), token, victims, timeout=lease_ttl * 4 + 10)
        took = time.monotonic() - killed_at
    finally:
        stop.set()
        caller.join()
    assert failures == []
    # Both Pubs answered while lc1 was dead, pub1 (whose Lifecycle it was) included.
    after = {pub: sum(t > killed_at for t in times) for pub, times in answered.items()}
    assert all(count > 0 for count in after.values()), after
    for record in ended:
        assert record["status"] in {"done", "failed"}, record
        if record["status"] == "failed":
            assert "stopped before it finished" in record["error"], record
    assert took < lease_ttl * 2 + 5, f"the deployments took {took:.1f} s to end"
    with psycopg.connect(_admin_dsn(cluster.database_url)) as conn:
        stuck = conn.execute("SELECT id FROM deployment WHERE status = 'in_progress'").fetchall()
    assert stuck == []
    return ended
