"""``racetrack validate``: the merged manifest on stdout, or one problem per line on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from ruamel.yaml import YAML

from racetrack_core import hookimpl
from racetrack_core.manifest import Problem
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_core.testing.plugin import RegisterPlugin

RunCli = Callable[..., Result]


def read_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


class ShoutPlugin:
    """A job type registered in code, with a schema for jobtype_extra and a check of its own."""

    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register(
            "shout",
            "2.0.0",
            extra_schema={
                "type": "object",
                "required": ["volume"],
                "properties": {"volume": {"type": "integer"}},
            },
        )

    @hookimpl
    def validate_manifest(
        self, manifest: Mapping[str, Any], job_type: JobType
    ) -> Iterable[Problem] | None:
        if job_type.name == "shout" and manifest["jobtype_extra"]["volume"] > 11:
            return [Problem("jobtype_extra.volume", "goes up to 11 at most")]
        return None


def test_a_valid_manifest_is_printed_merged(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli("validate", str(job_dir))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = read_yaml(result.stdout)
    assert data["name"] == "adder"
    assert data["version"] == "0.0.1"  # a default, filled in
    assert list(data)[:3] == ["name", "owner_email", "jobtype"]


def test_dir_defaults_to_the_current_directory(
    run_cli: RunCli, job_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(job_dir)
    result = run_cli("validate")
    assert result.exit_code == 0, result.stderr
    assert read_yaml(result.stdout)["name"] == "adder"


def test_extra_vars_override_fields(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli(
        "validate", str(job_dir), "-e", "version=1.2.3", "-e", "jobtype_extra.python_version='3.12'"
    )
    assert result.exit_code == 0, result.stderr
    data = read_yaml(result.stdout)
    assert data["version"] == "1.2.3"
    assert data["jobtype_extra"]["python_version"] == "3.12"


def test_a_malformed_extra_var_is_one_line(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli("validate", str(job_dir), "-e", "version")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "extra variable 'version' is not KEY=VALUE" in line


def test_an_invalid_manifest_gives_one_problem_per_line(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "name: Adder\nowner_email: someone@example.com\njobtype: pyton3\n", encoding="utf-8"
    )
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"Error: {tmp_path / 'job.yaml'}: field ") for line in lines)
    assert "field 'name' (line 1)" in lines[0]
    assert "unknown job type 'pyton3'. Installed: docker-proxy, golang, python3" in lines[1]


def test_unreadable_yaml_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "YAML" in line
    assert "line 2" in line


def test_a_missing_directory_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "does not exist" in line


def test_a_directory_without_a_manifest_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: no job.yaml in {tmp_path}: run this in a job directory, or pass its path"
    ]


def test_a_legacy_manifest_validates_with_a_warning(run_cli: RunCli, job_dir: Path) -> None:
    (job_dir / "job.yaml").rename(job_dir / "fatman.yaml")
    result = run_cli("validate", str(job_dir))
    assert result.exit_code == 0
    assert read_yaml(result.stdout)["name"] == "adder"
    assert result.stderr.splitlines() == [
        "Warning: fatman.yaml is deprecated: rename it to job.yaml"
    ]


def test_json_of_a_valid_manifest(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli("validate", str(job_dir), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["job_type"] == "python3:1.0.0"
    assert report["manifest"]["name"] == "adder"
    assert report["warnings"] == []


def test_json_of_an_invalid_manifest(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: adder\njobtype: python3\n", encoding="utf-8")
    result = run_cli("validate", str(tmp_path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert any("owner_email" in problem for problem in report["problems"])
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path / 'job.yaml'} is not valid (2 problems)"
    ]


def test_schema_prints_the_composed_schema(run_cli: RunCli) -> None:
    result = run_cli("validate", "--schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "jobtype" in schema["properties"]
    selected = [branch["if"]["properties"]["jobtype"]["pattern"] for branch in schema["allOf"]]
    assert any("python3" in pattern for pattern in selected)


def test_schema_takes_no_directory(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli("validate", "--schema", str(job_dir))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1


def test_a_job_type_of_a_plugin_is_validated_by_its_plugin(
    run_cli: RunCli, racetrack_register_plugin: RegisterPlugin, tmp_path: Path
) -> None:
    racetrack_register_plugin(ShoutPlugin(), "shout")
    (tmp_path / "job.yaml").write_text(
        "name: loud\nowner_email: a@example.com\njobtype: shout:2.x\n"
        "jobtype_extra:\n  volume: 11\n",
        encoding="utf-8",
    )
    assert run_cli("validate", str(tmp_path)).exit_code == 0

    result = run_cli("validate", str(tmp_path), "-e", "jobtype_extra.volume=12")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "field 'jobtype_extra.volume'" in line
    assert "goes up to 11 at most" in line

    schema = json.loads(run_cli("validate", "--schema").stdout)
    assert any(
        "shout" in branch["if"]["properties"]["jobtype"]["pattern"] for branch in schema["allOf"]
    )


LEGACY_MANIFEST = """\
name: adder
owner_email: sample@example.com
lang: python3:latest   # set by the original's template
git:
  remote: https://github.com/TheRacetrack/racetrack
python:
  entrypoint_path: entrypoint.py
"""


def test_validate_warns_about_older_spellings_and_fix_rewrites_them(
    run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "fatman.yaml").write_text(LEGACY_MANIFEST)
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert read_yaml(result.stdout)["jobtype_extra"] == {"entrypoint_path": "entrypoint.py"}
    assert result.stderr.splitlines() == [
        "Warning: fatman.yaml is deprecated: rename it to job.yaml",
        "Warning: field 'lang' (line 3): deprecated, write 'jobtype: python3:latest' instead "
        "(racetrack validate --fix rewrites the file)",
        "Warning: field 'python' (line 6): deprecated, write its settings (entrypoint_path) "
        "under 'jobtype_extra:' instead (racetrack validate --fix rewrites the file)",
    ]

    fixed = run_cli("validate", "--fix", str(tmp_path))
    assert fixed.exit_code == 0, fixed.output
    assert "fixed fatman.yaml: renamed 'lang' to 'jobtype' (python3:latest)" in fixed.stderr
    assert "fixed fatman.yaml: renamed 'python' to 'jobtype_extra'" in fixed.stderr
    assert "Warning: field 'lang'" not in fixed.stderr
    text = (tmp_path / "fatman.yaml").read_text()
    assert "jobtype: python3:latest # set by the original's template\n" in text
    assert "jobtype_extra:\n  entrypoint_path: entrypoint.py\n" in text

    again = run_cli("validate", "--fix", "--json", str(tmp_path))
    assert again.exit_code == 0
    assert json.loads(again.stdout)["fixed"] == []
    assert "fatman.yaml: nothing to fix" in again.stderr
    assert (tmp_path / "fatman.yaml").read_text() == text


def test_fix_with_a_conflict_exits_non_zero_and_keeps_the_file(
    run_cli: RunCli, tmp_path: Path
) -> None:
    text = LEGACY_MANIFEST.replace("git:", "jobtype: golang:latest\ngit:")
    (tmp_path / "job.yaml").write_text(text)
    result = run_cli("validate", "--fix", str(tmp_path))
    assert result.exit_code == 1
    assert "'lang' (python3:latest) and 'jobtype' (golang:latest) disagree" in result.stderr
    assert (tmp_path / "job.yaml").read_text() == text
