"""The call fast path: which URL paths are calls, and that everything else reaches Starlette."""

from __future__ import annotations

import pytest

from racetrack_plugins.python3.wrapper.router import call_path
from racetrack_plugins.python3.wrapper.scopes import route_path


@pytest.mark.parametrize(
    ("path", "job_name", "endpoint"),
    [
        ("/api/v1/perform", "primer", "/perform"),
        ("/api/v1/nested/triple", "primer", "/nested/triple"),
        ("/api/v1/", "primer", "/"),
        ("/pub/job/primer/1.2.3/api/v1/perform", "primer", "/perform"),
        ("/pub/job/primer/latest/api/v1/a/b", "primer", "/a/b"),
        ("/pub/job/anyone/1/api/v1/perform", "", "/perform"),
        ("/pub/job/other/1.0/api/v1/perform", "primer", None),
        ("/pub/job/primer//api/v1/perform", "primer", None),
        ("/pub/job/primer/1.2.3/api/v2/perform", "primer", None),
        ("/pub/job/primer/1.2.3", "primer", None),
        ("/api/v1", "primer", None),
        ("/live", "primer", None),
        ("/docs", "primer", None),
    ],
)
def test_call_path_matches_what_the_starlette_routes_matched(path, job_name, endpoint):
    assert call_path(path, job_name) == endpoint


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/api/v1/perform", "", "/api/v1/perform"),
        ("/job/api/v1/perform", "/job", "/api/v1/perform"),
        ("/jobs/api/v1/perform", "/job", "/jobs/api/v1/perform"),
    ],
)
def test_route_path_leaves_out_the_root_path(path, root_path, expected):
    assert route_path({"path": path, "root_path": root_path}) == expected


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_on_a_call_path_reach_starlette(write_job, serve, method):
    source = """
        class Job:
            def perform(self) -> int:
                return 1
    """
    with serve(write_job(source)) as client:
        assert client.request(method, "/api/v1/perform").status_code == 405


def test_a_post_elsewhere_reaches_starlette(write_job, serve):
    source = """
        class Job:
            def perform(self) -> int:
                return 1
    """
    with serve(write_job(source)) as client:
        assert client.post("/pub/job/other/1.0/api/v1/perform").text == "Not Found"
        assert client.post("/live").status_code == 405
