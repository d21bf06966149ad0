"""A job's requirements win over the wrapper's, on the local target (real uv environments).

Each job of ``tests/compat/jobs`` pins releases of packages that the wrapper itself runs on
(Flask 2.2.5 with Jinja2 3.1.4, FastAPI 0.110.1 with its Starlette, an old uvicorn, anyio, h11
and click), and one more job asks for the newest of each. Every job must build, see its own
versions, and still be served by a working wrapper: Swagger, metrics, and webview apps made
with the job's own Flask or FastAPI. The Docker half is ``tests/plugins/docker_infra``'s
``test_requirements_isolation.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from racetrack_plugins.python3.process import Python3ProcessRecipe
from tests.plugins.python3.test_local_recipe import free_port, job_env, make_spec, serving

pytestmark = pytest.mark.slow

JOBS = Path(__file__).resolve().parents[2] / "compat" / "jobs"
NEWEST = ("starlette", "uvicorn", "anyio", "jinja2", "h11", "click")
NEWEST_JOB = """
from importlib import metadata


class Newest:
    def perform(self) -> dict:
        import anyio, click, h11, jinja2, starlette, uvicorn  # noqa: F401
        return {name: metadata.version(name) for name in %r}
"""


def _parse(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    """Every isolation job built with the process recipe and serving on 127.0.0.1."""
    root = tmp_path_factory.mktemp("isolation")
    newest = root / "newest"
    newest.mkdir()
    (newest / "entrypoint.py").write_text(NEWEST_JOB % (NEWEST,), encoding="utf-8")
    # At least the server's own versions of everything: the resolver picks the newest.
    (newest / "requirements.txt").write_text(
        "".join(f"{name}>={metadata.version(name)}\n" for name in NEWEST), encoding="utf-8"
    )
    workspaces = {"newest": newest}
    for name in ("flask-jinja", "fastapi-webview", "old-uvicorn"):
        workspaces[name] = shutil.copytree(JOBS / name, root / name)
    with ExitStack() as stack:
        clients = {}
        for name, workspace in workspaces.items():
            spec = make_spec(workspace, root / "state", requirements_path="requirements.txt")
            env_dir = root / "envs" / name
            Python3ProcessRecipe().build(spec, env_dir, lambda line: None)
            port = free_port()
            command = Python3ProcessRecipe().command(spec, env_dir, port)
            log = root / f"{name}.log"
            clients[name] = stack.enter_context(serving(command, job_env(spec, port), log))
        yield clients


def assert_the_wrapper_works(client: httpx.Client) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert client.get("/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]
    assert "requests_started" in client.get("/metrics").text


def test_flask_2_2_and_jinja2_3_1_4_win_for_the_job(served: dict[str, httpx.Client]) -> None:
    client = served["flask-jinja"]
    answer = client.post("/api/v1/perform", json={"name": "Ada"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "page": "<p>Hello, Ada! (Jinja2 3.1.4)</p>",
        "jinja2": "3.1.4",
        "flask": "2.2.5",
    }
    webview = client.get("/api/v1/webview/")
    assert webview.status_code == 200, webview.text
    assert "Hello, webview! (Jinja2 3.1.4)" in webview.text
    assert_the_wrapper_works(client)


def test_fastapi_0_110_with_its_own_starlette_serves_its_webview(
    served: dict[str, httpx.Client],
) -> None:
    client = served["fastapi-webview"]
    assert client.post("/api/v1/perform", json={}).json() == {
        "fastapi": "0.110.1",
        "starlette": "0.37.2",
    }
    # As Pub calls it: FastAPI(root_path=base_url) expects the public prefix.
    webview = "/pub/job/job/1.0.0/api/v1/webview"
    assert client.get(f"{webview}/items/5").json() == {"item_id": 5}
    assert client.get(f"{webview}/").json()["starlette"] == "0.37.2"
    assert_the_wrapper_works(client)


def test_an_old_uvicorn_anyio_h11_and_click_are_the_jobs_own(
    served: dict[str, httpx.Client],
) -> None:
    client = served["old-uvicorn"]
    answer = client.post("/api/v1/perform", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "uvicorn": "0.20.0",
        "h11": "0.14.0",
        "anyio": "3.7.1",
        "anyio_module": "anyio",
    }
    assert_the_wrapper_works(client)


def test_the_newest_of_each_is_the_jobs_own_too(served: dict[str, httpx.Client]) -> None:
    client = served["newest"]
    answer = client.post("/api/v1/perform", json={})
    assert answer.status_code == 200, answer.text
    versions = answer.json()
    for name in NEWEST:
        assert _parse(versions[name]) >= _parse(metadata.version(name)), versions
    assert_the_wrapper_works(client)
