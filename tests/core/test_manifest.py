"""Loading manifests: files, job directories, extends, extra variables and line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core.errors import ManifestError
from racetrack_core.manifest import (
    Location,
    deep_merge,
    dump_yaml,
    find_manifest,
    load_manifest,
    parse_manifest,
)

pytestmark = pytest.mark.smoke  # fast and self-contained: run in the first-run test

PRIMER = """\
name: primer
owner_email: sample@example.com
jobtype: python3:latest
git:
  remote: https://github.com/TheRacetrack/racetrack
  directory: sample/python-primer
jobtype_extra:
  entrypoint_path: 'entrypoint.py'
"""


def problems_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_locations_are_one_based_lines_of_each_field() -> None:
    manifest = parse_manifest(PRIMER + "public_endpoints:\n  - /a\n  - /b\n")
    assert manifest.location(("jobtype",)) == Location(None, 3)
    assert manifest.location(("git", "directory")) == Location(None, 6)
    assert manifest.location(("public_endpoints", 1)) == Location(None, 11)
    # A field that is not written falls back to its nearest written parent.
    assert manifest.location(("git", "branch")) == Location(None, 4)


def test_values_are_plain_python() -> None:
    manifest = parse_manifest(PRIMER + "replicas: 2\nlabels: {a: true}\n")
    assert type(manifest.data) is dict
    assert type(manifest.data["git"]) is dict
    assert manifest.data["replicas"] == 2
    assert manifest.data["labels"] == {"a": True}


def test_job_directory_is_resolved_to_its_job_yaml(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(PRIMER)
    assert load_manifest(tmp_path).data["name"] == "primer"
    assert find_manifest(tmp_path) == tmp_path / "job.yaml"


def test_legacy_manifest_name_works_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "fatman.yaml").write_text(PRIMER)
    manifest = load_manifest(tmp_path)
    assert manifest.data["name"] == "primer"
    assert manifest.warnings == ["fatman.yaml is deprecated: rename it to job.yaml"]


def test_directory_without_manifest_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no job.yaml in .*: run this in a job directory"):
        load_manifest(tmp_path)


def test_unreadable_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"cannot read .*missing.yaml: No such file"):
        load_manifest(tmp_path / "missing.yaml")


def test_extends_deep_merges_with_the_overlay_winning(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "owner_email: team@example.com\njobtype: python3:latest\n"
        "runtime_env:\n  A: base\n  B: base\ngit:\n  remote: https://example.com/r\n"
    )
    (tmp_path / "job.yaml").write_text(
        "extends: base.yaml\nname: child\nruntime_env:\n  B: child\ngit:\n  directory: jobs/child\n"
    )
    manifest = load_manifest(tmp_path)
    assert "extends" not in manifest.data
    assert manifest.data["runtime_env"] == {"A": "base", "B": "child"}
    assert manifest.data["git"] == {"remote": "https://example.com/r", "directory": "jobs/child"}
    assert manifest.location(("runtime_env", "A")) == Location("base.yaml", 4)
    assert manifest.location(("runtime_env", "B")) == Location(None, 4)


@pytest.mark.parametrize(
    ("extends", "message"),
    [
        ("missing.yaml", "field 'extends' (line 1): cannot read base manifest 'missing.yaml'"),
        ("/etc/base.yaml", "field 'extends' (line 1): '/etc/base.yaml' is absolute"),
        ("[1, 2]", "field 'extends' (line 1): expected a relative path to a base manifest"),
    ],
)
def test_bad_extends_is_explained(tmp_path: Path, extends: str, message: str) -> None:
    (tmp_path / "job.yaml").write_text(f"extends: {extends}\nname: child\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.problems[0].startswith(message)


def test_extends_is_only_one_level_deep(tmp_path: Path) -> None:
    (tmp_path / "grandparent.yaml").write_text("name: x\n")
    (tmp_path / "base.yaml").write_text("extends: grandparent.yaml\n")
    (tmp_path / "job.yaml").write_text("extends: base.yaml\n")
    with pytest.raises(ManifestError, match="has an 'extends' of its own; only one level"):
        load_manifest(tmp_path)


def test_extra_vars_apply_after_the_merge_as_yaml_scalars(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("replicas: 1\nversion: 1.0.0\n")
    (tmp_path / "job.yaml").write_text("extends: base.yaml\nname: child\n")
    manifest = load_manifest(
        tmp_path,
        extra_vars=["replicas=3", "git.branch=main", "version=2.0.0", "labels.on=true", "x="],
    )
    assert manifest.data["replicas"] == 3
    assert manifest.data["git"] == {"branch": "main"}
    assert manifest.data["version"] == "2.0.0"
    assert manifest.data["labels"] == {"on": True}
    assert manifest.data["x"] == ""
    assert manifest.location(("replicas",)) == Location("-e replicas", None)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("replicas", "extra variable 'replicas' is not KEY=VALUE; write it like -e version=1.2.3"),
        ("=3", "extra variable '=3' is not KEY=VALUE; write it like -e version=1.2.3"),
        ("git..branch=x", "extra variable 'git..branch=x': 'git..branch' has an empty part"),
        ("name.first=x", "extra variable 'name.first=x': field 'name' is not a mapping"),
    ],
)
def test_malformed_extra_vars_are_explained(assignment: str, message: str) -> None:
    assert problems_of(PRIMER, extra_vars=[assignment]) == [message]


def test_yaml_errors_name_the_line() -> None:
    assert problems_of("name: a\njobtype: [x\n") == [
        "YAML syntax error (line 3): expected ',' or ']', but got '<stream end>'"
    ]


def test_deep_merge_does_not_change_its_inputs() -> None:
    base = {"a": {"b": 1, "c": 2}}
    overlay = {"a": {"c": 3}, "d": [1]}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": 3}, "d": [1]}
    assert base == {"a": {"b": 1, "c": 2}}


def test_merged_manifest_prints_as_yaml_in_written_order() -> None:
    text = dump_yaml(parse_manifest(PRIMER).data)
    assert text.splitlines()[:3] == [
        "name: primer",
        "owner_email: sample@example.com",
        "jobtype: python3:latest",
    ]
