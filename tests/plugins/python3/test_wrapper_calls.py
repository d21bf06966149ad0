"""POST /api/v1/perform and auxiliary calls, /api/v1/parameters and static files."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import anyio
import httpx
import pytest

from racetrack_plugins.python3.wrapper import WrapperSettings, create_app

PRIMER = """
    import math

    class JobEntrypoint:
        def perform(self, number: int) -> bool:
            if number < 2:
                return False
            return all(number % i for i in range(2, int(math.sqrt(number)) + 1))
"""

TYPED = """
    from typing import Optional

    class JobEntrypoint:
        def perform(self, a: int, b: float = 1.5, tags: list[str] | None = None,
                    mode: Optional[str] = None, extra: dict = {}) -> dict:
            return {"a": a, "b": b, "tags": tags, "mode": mode}
"""


@pytest.mark.parametrize("prefix", ["", "/pub/job/primer/1.2.3", "/pub/job/primer/anything"])
def test_perform_answers_json_at_root_and_under_pub(write_job, serve, prefix):
    with serve(write_job(PRIMER)) as client:
        assert client.post(f"{prefix}/api/v1/perform", json={"number": 7907}).json() is True
        assert client.post(f"{prefix}/api/v1/perform", json={"number": 8}).json() is False


def test_pub_prefix_needs_the_job_name(write_job, serve):
    with serve(write_job(PRIMER)) as client:
        assert (
            client.post("/pub/job/other/1.0/api/v1/perform", json={"number": 7}).status_code == 404
        )


def test_async_perform_is_awaited(write_job, serve):
    source = """
        import asyncio

        class Job:
            async def perform(self, name: str) -> str:
                await asyncio.sleep(0)
                return f"hello {name}"
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform", json={"name": "ada"}).json() == "hello ada"


def test_sync_perform_runs_in_a_worker_thread(write_job, serve):
    source = """
        import threading

        class Job:
            def perform(self) -> bool:
                return threading.current_thread() is threading.main_thread()
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform", json={}).json() is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing required argument 'a' for perform"),
        ({"a": 1, "c": 2}, "unexpected argument 'c' for perform; it accepts: a, b, tags, mode"),
        ({"a": "one"}, "argument 'a' of perform must be an integer, got string 'one'"),
        ({"a": True}, "argument 'a' of perform must be an integer, got boolean True"),
        ({"a": 1, "b": "x"}, "argument 'b' of perform must be a number"),
        ({"a": 1, "tags": ["x", 2]}, "argument 'tags' of perform must be list[str] | None"),
        ({"a": 1, "mode": 3}, "argument 'mode' of perform must be Optional[str]"),
        ({"a": 1, "extra": []}, "argument 'extra' of perform must be an object, got array []"),
    ],
)
def test_wrong_arguments_answer_400_naming_the_argument(write_job, serve, body, message):
    with serve(write_job(TYPED)) as client:
        response = client.post("/api/v1/perform", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == "ValueError"
    assert response.json()["error"].startswith(message)


def test_fitting_arguments_and_defaults_reach_perform(write_job, serve):
    with serve(write_job(TYPED)) as client:
        response = client.post("/api/v1/perform", json={"a": 1, "b": 2, "tags": None})
    assert response.json() == {"a": 1, "b": 2, "tags": None, "mode": None}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "the request body is not valid JSON"),
        (b"[1, 2]", "the request body must be a JSON object of keyword arguments"),
        (b'"text"', "the request body must be a JSON object of keyword arguments"),
    ],
)
def test_a_body_that_is_no_json_object_answers_400(write_job, serve, content, message):
    with serve(write_job(PRIMER)) as client:
        response = client.post("/api/v1/perform", content=content)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_an_empty_body_calls_perform_without_arguments(write_job, serve):
    source = """
        class Job:
            def perform(self, x: int = 3) -> int:
                return x
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform").json() == 3


def test_keyword_arguments_are_accepted_by_a_perform_with_kwargs(write_job, serve):
    source = """
        class Job:
            def perform(self, **kwargs) -> dict:
                return kwargs
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform", json={"x": [1]}).json() == {"x": [1]}


def test_an_exception_in_user_code_answers_500_without_traceback(write_job, serve, caplog):
    source = """
        class Job:
            def perform(self, x: int) -> int:
                raise KeyError(f"no such key {x}")
    """
    with serve(write_job(source)) as client:
        response = client.post("/api/v1/perform", json={"x": 5})
    assert response.status_code == 500
    assert response.json() == {"error": "'no such key 5'", "type": "KeyError"}
    assert "Traceback" not in response.text
    [logged] = [record for record in caplog.records if record.name == "racetrack.job"]
    assert logged.getMessage() == "calling /perform failed"
    assert logged.exc_info is not None


def test_a_value_error_of_user_code_is_a_400_as_in_the_original(write_job, serve, caplog):
    source = """
        class Job:
            def perform(self, x: int) -> int:
                if x < 0:
                    raise ValueError(f"x must not be negative, got {x}")
                return x
    """
    with serve(write_job(source)) as client:
        response = client.post("/api/v1/perform", json={"x": -1})
    assert response.status_code == 400
    assert response.json() == {"error": "x must not be negative, got -1", "type": "ValueError"}
    assert "calling /perform refused" in caplog.text


def test_a_type_error_inside_user_code_is_a_500_not_a_400(write_job, serve):
    source = """
        class Job:
            def perform(self, x: int) -> int:
                return x + "1"
    """
    with serve(write_job(source)) as client:
        response = client.post("/api/v1/perform", json={"x": 5})
    assert response.status_code == 500
    assert response.json()["type"] == "TypeError"


def test_a_result_that_is_no_json_answers_500(write_job, serve):
    source = """
        class Job:
            def perform(self) -> object:
                return object()
    """
    with serve(write_job(source)) as client:
        response = client.post("/api/v1/perform", json={})
    assert response.status_code == 500
    assert response.json()["error"].startswith("the result cannot be encoded as JSON")


def test_dataclasses_sets_and_dates_are_encoded(write_job, serve):
    source = """
        import dataclasses, datetime

        @dataclasses.dataclass
        class Point:
            x: int

        class Job:
            def perform(self) -> object:
                return [Point(1), {3}, datetime.date(2024, 1, 2)]
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform").json() == [{"x": 1}, [3], "2024-01-02"]


def test_a_body_over_the_limit_answers_413(write_job, serve):
    with serve(write_job(PRIMER), max_body_bytes=20) as client:
        assert client.post("/api/v1/perform", json={"number": 7}).status_code == 200
        response = client.post("/api/v1/perform", json={"number": 7, "padding": "x" * 50})
    assert response.status_code == 413
    assert response.json()["type"] == "PayloadTooLarge"
    assert "JOB_MAX_BODY_BYTES" in response.json()["error"]


def test_a_streamed_body_over_the_limit_answers_413(write_job, serve):
    def chunks() -> Iterator[bytes]:
        yield b'{"number": '
        yield b"1" * 40 + b"}"

    with serve(write_job(PRIMER), max_body_bytes=20) as client:
        response = client.post("/api/v1/perform", content=chunks())
    assert response.status_code == 413


GATED_JOB = """
    import asyncio

    gate = asyncio.Event()
    order = []

    class Job:
        async def perform(self, n: int) -> int:
            await gate.wait()
            order.append(n)
            return n
"""


def run_gated_calls(write_job, calls: int, **settings: object) -> tuple[list[int], list[int]]:
    """Start ``calls`` calls to a job whose calls wait for a gate; the statuses, then the order.

    The gate opens once every call has been admitted (running or queued) or refused.
    """
    app = create_app("entrypoint.py", None, write_job(GATED_JOB), WrapperSettings(**settings))  # type: ignore[arg-type]
    app.state.runtime.initialize()
    module = sys.modules["racetrack_job_entrypoint"]
    statuses: dict[int, int] = {}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://job") as client:

            async def call(n: int) -> None:
                statuses[n] = (await client.post("/api/v1/perform", json={"n": n})).status_code

            async with anyio.create_task_group() as tasks:
                for n in range(calls):
                    tasks.start_soon(call, n)
                    # One at a time, so that the queue's order is the order of the calls.
                    while app.state.limiter.active + len(statuses) < n + 1:
                        await anyio.sleep(0.001)
                module.gate.set()

    anyio.run(scenario)
    return [statuses[n] for n in range(calls)], list(module.order)


def test_calls_past_max_concurrency_wait_in_order_like_the_original(write_job):
    statuses, order = run_gated_calls(write_job, 4, max_concurrency=1)
    assert statuses == [200, 200, 200, 200]
    assert order == [0, 1, 2, 3]


def test_calls_past_the_concurrency_queue_answer_429(write_job):
    statuses, order = run_gated_calls(write_job, 4, max_concurrency=1, max_concurrency_queue=2)
    assert statuses == [200, 200, 200, 429]
    assert order == [0, 1, 2]


def test_a_zero_queue_refuses_at_once(write_job):
    statuses, _ = run_gated_calls(write_job, 3, max_concurrency=2, max_concurrency_queue=0)
    assert statuses == [200, 200, 429]


def test_calls_before_init_finished_answer_503(write_job, serve):
    source = """
        import threading

        release = threading.Event()

        class Job:
            def __init__(self):
                release.wait(10)

            def perform(self) -> int:
                return 1
    """
    with serve(write_job(source), wait=False) as client:
        response = client.post("/api/v1/perform", json={})
        assert response.status_code == 503
        assert response.json()["type"] == "NotReady"
        sys.modules["racetrack_job_entrypoint"].release.set()


AUXILIARY = """
    class Job:
        def perform(self, x: int) -> int:
            return x

        def auxiliary_endpoints(self):
            return {"/double": self.double, "/nested/triple": self.triple}

        def double(self, x: int) -> int:
            return 2 * x

        async def triple(self, x: int) -> int:
            return 3 * x
"""


@pytest.mark.parametrize("prefix", ["", "/pub/job/primer/1.2.3"])
def test_auxiliary_endpoints_are_served_under_api_v1(write_job, serve, prefix):
    with serve(write_job(AUXILIARY)) as client:
        assert client.post(f"{prefix}/api/v1/double", json={"x": 4}).json() == 8
        assert client.post(f"{prefix}/api/v1/nested/triple", json={"x": 4}).json() == 12
        response = client.post(f"{prefix}/api/v1/double", json={"y": 4})
        assert response.status_code == 400
        assert "unexpected argument 'y' for double" in response.json()["error"]


def test_an_unknown_endpoint_answers_404_listing_the_served_ones(write_job, serve):
    with serve(write_job(AUXILIARY)) as client:
        response = client.post("/api/v1/quadruple", json={"x": 4})
    assert response.status_code == 404
    assert response.json()["error"] == (
        "no endpoint POST /api/v1/quadruple; this job serves: "
        "/api/v1/perform, /api/v1/double, /api/v1/nested/triple"
    )


def test_parameters_list_required_and_optional_ones(write_job, serve):
    with serve(write_job(TYPED), wait=False) as client:
        parameters = client.get("/pub/job/primer/1.2.3/api/v1/parameters").json()
    assert parameters == [
        {"name": "a", "type": "int"},
        {"name": "b", "default_value": 1.5, "type": "float"},
        {"name": "tags", "default_value": None, "type": "list[str] | None"},
        {"name": "mode", "default_value": None, "type": "Optional[str]"},
        {"name": "extra", "default_value": {}, "type": "dict"},
    ]


STATIC = """
    class Job:
        def perform(self) -> int:
            return 1

        def static_endpoints(self):
            return {
                "/readme": "README.md",
                "/data": ("data/values.csv", "text/csv"),
                "/assets": "assets",
            }
"""


@pytest.mark.parametrize("prefix", ["", "/pub/job/primer/1.2.3"])
def test_static_endpoints_serve_files_and_directories(write_job, serve, prefix):
    job_dir = write_job(
        STATIC,
        **{"README.md": "# hi\n", "data__values.csv": "a,b\n", "assets__css__site.css": "p {}"},
    )
    with serve(job_dir) as client:
        readme = client.get(f"{prefix}/api/v1/readme")
        data = client.get(f"{prefix}/api/v1/data")
        css = client.get(f"{prefix}/api/v1/assets/css/site.css")
        missing = client.get(f"{prefix}/api/v1/assets/css/none.css")
        escaping = client.get(f"{prefix}/api/v1/assets/..%2F..%2FREADME.md")
    assert readme.text == "# hi\n"
    assert data.headers["content-type"].startswith("text/csv")
    assert data.text == "a,b\n"
    assert css.text == "p {}"
    assert css.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    assert escaping.status_code == 404


@pytest.mark.parametrize("target", ["../secret.txt", "/etc/passwd", "nothing-here.txt"])
def test_static_endpoints_outside_the_job_dir_fail_the_start(write_job, serve, target):
    source = f"""
        class Job:
            def perform(self) -> int:
                return 1

            def static_endpoints(self):
                return {{"/secret": "{target}"}}
    """
    with serve(write_job(source)) as client:
        live = client.get("/live")
    assert live.status_code == 500
    assert f"static_endpoints()['/secret'] is '{target}'" in live.json()["error"]


def test_a_body_sent_in_chunks_is_joined(write_job, serve):
    def chunks() -> Iterator[bytes]:
        yield b'{"number": '
        yield b"7907}"

    with serve(write_job(PRIMER)) as client:
        assert client.post("/api/v1/perform", content=chunks()).json() is True


@pytest.mark.parametrize(("body", "status"), [({"number": 7}, 200), ({"x": 1}, 400)])
def test_answers_carry_starlettes_json_headers(write_job, serve, body, status):
    with serve(write_job(PRIMER)) as client:
        response = client.post("/api/v1/perform", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))


def test_a_client_gone_before_its_body_gets_no_answer(write_job):
    app = create_app("entrypoint.py", None, write_job(PRIMER), WrapperSettings())
    app.state.runtime.initialize()
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/perform", "headers": []}
    anyio.run(app, scope, receive, send)
    assert sent == []
    assert app.state.limiter.running == 0


def test_sync_or_async_is_decided_once_per_endpoint(write_job, serve):
    with serve(write_job(AUXILIARY)) as client:
        assert client.post("/api/v1/nested/triple", json={"x": 1}).json() == 3
        calls = client.app.state.runtime.interface.calls
    # functools.cached_property: the answer is kept in the endpoint after the first call.
    assert vars(calls["/nested/triple"])["is_async"] is True
    assert "is_async" not in vars(calls["/double"])  # never called


def test_def_methods_can_reach_the_event_loop_with_anyio_from_thread(write_job, serve):
    source = """
        import anyio, anyio.from_thread

        class Job:
            def perform(self) -> int:
                return anyio.from_thread.run(self.later)

            async def later(self) -> int:
                await anyio.sleep(0)
                return 5
    """
    with serve(write_job(source)) as client:
        assert client.post("/api/v1/perform", json={}).json() == 5


def test_request_context_and_request_extra_belong_to_each_call(write_job, serve):
    source = """
        class Job:
            def __init__(self):
                self.outside = None

            def perform(self, mark: str) -> dict:
                extra = self.request_extra.get()
                seen_before = dict(extra)
                extra["mark"] = mark
                headers = self.request_context.get().headers
                return {"before": seen_before, "after": self.request_extra.get(),
                        "header": headers.get("x-mark")}

            def outside_a_call(self) -> str:
                try:
                    self.request_context.get()
                except LookupError as error:
                    return f"{error}; default={self.request_context.get('none')}"
                return "bound"

            def auxiliary_endpoints(self):
                return {"/outside": self.check_outside}

            def check_outside(self) -> str:
                import threading
                answer = []
                thread = threading.Thread(target=lambda: answer.append(self.outside_a_call()))
                thread.start()
                thread.join()
                return answer[0]
    """
    with serve(write_job(source)) as client:
        first = client.post("/api/v1/perform", json={"mark": "a"}, headers={"X-Mark": "one"})
        second = client.post("/api/v1/perform", json={"mark": "b"}, headers={"X-Mark": "two"})
        outside = client.post("/api/v1/outside", json={}).json()
    assert first.json() == {"before": {}, "after": {"mark": "a"}, "header": "one"}
    assert second.json() == {"before": {}, "after": {"mark": "b"}, "header": "two"}
    assert outside == "request_context: no request is being served; default=none"
