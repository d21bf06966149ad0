"""``racetrack validate --fix``: today's spellings, comments and order kept, idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from racetrack_core.errors import ManifestError
from racetrack_core.manifest import dump_yaml, parse_manifest
from racetrack_core.manifest_fix import fix_file, fix_text
from racetrack_core.manifest_spellings import modernize, uses_older_spellings

ORIGINAL = """\
# An original Racetrack job
name: adder
owner_email: sample@example.com
lang: python3:latest  # the job type
image_type: docker
# where the code is
git:
    remote: https://github.com/TheRacetrack/racetrack
    directory: sample/python-class

# the wrapper settings
python:
    entrypoint_path: 'adder.py'   # the class
    requirements_path: "requirements.txt"
# build time
build_env:
    DEBIAN_FRONTEND: 'noninteractive'
system_dependencies:
    - curl
wrapper_properties:
    max_concurrency: 2
# the end
"""

FIXED = """\
# An original Racetrack job
name: adder
owner_email: sample@example.com
jobtype: python3:latest # the job type
# where the code is
git:
    remote: https://github.com/TheRacetrack/racetrack
    directory: sample/python-class

# the wrapper settings
jobtype_extra:
    entrypoint_path: 'adder.py'   # the class
    requirements_path: "requirements.txt"
    max_concurrency: 2
# build time
build_env:
    DEBIAN_FRONTEND: 'noninteractive'
system_dependencies:
    - curl
# the end
"""


def test_fix_rewrites_older_spellings_keeping_comments_order_quotes_and_indents() -> None:
    fix = fix_text(ORIGINAL)
    assert fix.text == FIXED
    assert fix.changes == [
        "renamed 'lang' to 'jobtype' (python3:latest)",
        "renamed 'python' to 'jobtype_extra'",
        "moved max_concurrency from 'wrapper_properties' into 'jobtype_extra'",
        "removed 'image_type: docker': it means nothing here",
    ]


def test_fix_is_idempotent_and_leaves_a_current_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(ORIGINAL)
    assert fix_file(path).changes
    assert path.read_text() == FIXED
    again = fix_file(path)
    assert again.changes == []
    assert path.read_text() == FIXED


def test_fix_merges_into_an_existing_jobtype_extra_and_drops_a_repeated_lang() -> None:
    text = (
        "name: a\nowner_email: a@example.com\njobtype: docker-proxy:latest\n"
        "lang: docker-proxy:latest\n"
        "jobtype_extra:\n  dockerfile_path: Dockerfile\n"
        "wrapper_properties:\n  user_module_port: 7004  # the server's port\n"
    )
    fix = fix_text(text)
    assert fix.text == (
        "name: a\nowner_email: a@example.com\njobtype: docker-proxy:latest\n"
        "jobtype_extra:\n  dockerfile_path: Dockerfile\n"
        "  user_module_port: 7004  # the server's port\n"
    )


def test_fix_refuses_a_conflict_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    text = "name: a\nowner_email: a@example.com\nlang: python3:latest\njobtype: golang:latest\n"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        fix_file(path)
    assert caught.value.problems[0].startswith(
        "field 'lang': 'lang' (python3:latest) and 'jobtype' (golang:latest) disagree"
    )
    assert path.read_text() == text


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["python3:latest", "golang:latest", "docker-proxy:latest", "docker", "a.py"]),
)
KEYS = st.sampled_from(
    ["name", "lang", "jobtype", "jobtype_extra", "python", "golang", "docker",
     "wrapper_properties", "image_type", "entrypoint_path", "gomod", "user_module_port"]
)  # fmt: skip
VALUES = st.recursive(
    SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=12
)


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=8))
@settings(deadline=2000)
def test_fix_of_any_mix_of_spellings_is_a_clean_answer_and_idempotent(data: dict[str, Any]) -> None:
    text = dump_yaml(data)
    try:
        fix = fix_text(text)
    except ManifestError:
        return  # a conflict, said in sentences
    assert fix_text(fix.text).changes == []
    fixed = parse_manifest(fix.text).data
    assert (
        not uses_older_spellings(fixed)
        or fixed.get("lang") is not None
        or ("image_type" in fixed and fixed["image_type"] != "docker")
    )
    assert modernize(fixed).data == modernize(data).data
