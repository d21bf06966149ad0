"""The worker threads of def methods: a bounded pool, context copied, anyio.from_thread usable."""

from __future__ import annotations

import contextvars
import threading
import time

import anyio
import anyio.from_thread

from racetrack_plugins.python3.wrapper.workers import WorkerThreads

REQUEST_ID = contextvars.ContextVar("request_id", default="none")


def test_a_method_runs_in_a_worker_thread_with_the_callers_context():
    workers = WorkerThreads(2)

    def method(suffix: str) -> tuple[str, str]:
        return threading.current_thread().name, REQUEST_ID.get() + suffix

    async def scenario() -> tuple[str, str]:
        REQUEST_ID.set("call-7")
        return await workers.run(method, {"suffix": "!"})

    try:
        thread_name, seen = anyio.run(scenario)
    finally:
        workers.shutdown()
    assert thread_name.startswith("job-worker")
    assert seen == "call-7!"


def test_no_more_than_size_methods_run_at_once():
    workers = WorkerThreads(2)
    running, most = 0, 0
    lock = threading.Lock()

    def method() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async def scenario() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(6):
                tasks.start_soon(workers.run, method, {})

    try:
        anyio.run(scenario)
    finally:
        workers.shutdown()
    assert most == 2


def test_anyio_from_thread_reaches_the_event_loop_as_in_an_anyio_worker():
    workers = WorkerThreads(1)

    async def on_the_loop(value: int) -> int:
        await anyio.sleep(0)
        return value * 2

    def method() -> int:
        return anyio.from_thread.run(on_the_loop, 21)

    try:
        assert anyio.run(workers.run, method, {}) == 42
    finally:
        workers.shutdown()
