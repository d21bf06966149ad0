"""The original Racetrack's older manifest spellings: read as current fields with a warning
that shows the new spelling; conflicts refused naming both fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core import PluginManager
from racetrack_core.errors import ManifestError
from racetrack_core.manifest import load_manifest, parse_manifest
from racetrack_core.manifest_spellings import modernize
from racetrack_core.schema import validate_manifest

HEAD = "name: adder\nowner_email: sample@example.com\n"


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    return PluginManager().load()


def test_lang_and_python_become_jobtype_and_jobtype_extra_in_place(
    plugins: PluginManager,
) -> None:
    text = HEAD + (
        "lang: python3:latest\n"
        "python:\n"
        "  entrypoint_path: adder.py\n"
        "  requirements_path: requirements.txt\n"
        "replicas: 1\n"
    )
    valid = validate_manifest(parse_manifest(text), plugins)
    assert list(valid.data)[:5] == ["name", "owner_email", "jobtype", "jobtype_extra", "replicas"]
    assert valid.data["jobtype_extra"] == {
        "entrypoint_path": "adder.py",
        "requirements_path": "requirements.txt",
    }
    assert valid.warnings == [
        "field 'lang' (line 3): deprecated, write 'jobtype: python3:latest' instead "
        "(racetrack validate --fix rewrites the file)",
        "field 'python' (line 4): deprecated, write its settings (entrypoint_path, "
        "requirements_path) under 'jobtype_extra:' instead (racetrack validate --fix "
        "rewrites the file)",
    ]


def test_an_error_in_a_moved_setting_names_its_line(plugins: PluginManager) -> None:
    text = HEAD + "lang: python3:latest\npython:\n  entrypoint_path: adder.txt\n"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(text), plugins)
    assert caught.value.problems == [
        "field 'jobtype_extra.entrypoint_path' (line 5): 'adder.txt' is not valid: "
        "expected a relative path to a .py file, like entrypoint.py"
    ]


def test_lang_and_jobtype_that_disagree_are_an_error_naming_both() -> None:
    done = modernize({"lang": "python3:latest", "jobtype": "golang:latest"})
    assert [(p.field, p.message) for p in done.problems] == [
        (
            "lang",
            "'lang' (python3:latest) and 'jobtype' (golang:latest) disagree: 'lang' is the "
            "older spelling of 'jobtype'; keep only 'jobtype' with the job type you mean",
        )
    ]


def test_lang_that_repeats_jobtype_is_dropped_with_a_warning() -> None:
    done = modernize({"lang": "python3:latest", "jobtype": "python3:latest"})
    assert done.data == {"jobtype": "python3:latest"}
    assert done.problems == []
    assert "says the same as 'jobtype'" in done.warnings[0].message


def test_a_setting_given_twice_with_two_values_names_both_fields(
    plugins: PluginManager,
) -> None:
    text = HEAD + (
        "jobtype: python3:latest\n"
        "jobtype_extra:\n  entrypoint_path: a.py\n"
        "python:\n  entrypoint_path: b.py\n"
    )
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(text), plugins)
    assert caught.value.problems == [
        "field 'python.entrypoint_path' (line 7): 'b.py' disagrees with "
        "'jobtype_extra.entrypoint_path' ('a.py'): 'python' is the older spelling of "
        "'jobtype_extra'; set 'entrypoint_path' once, under jobtype_extra"
    ]


def test_sections_merge_when_they_agree() -> None:
    done = modernize(
        {
            "jobtype": "docker-proxy:latest",
            "docker": {"dockerfile_path": "Dockerfile"},
            "wrapper_properties": {"user_module_port": 7004},
        }
    )
    assert done.problems == []
    assert done.data == {
        "jobtype": "docker-proxy:latest",
        "jobtype_extra": {"dockerfile_path": "Dockerfile", "user_module_port": 7004},
    }
    assert [w.field for w in done.warnings] == ["docker", "wrapper_properties"]


def test_golang_section_and_docker_section_of_another_job_type(plugins: PluginManager) -> None:
    text = HEAD + (
        "lang: golang:latest\ngolang:\n  gomod: go.mod\ndocker:\n  dockerfile_path: Dockerfile\n"
    )
    valid = validate_manifest(parse_manifest(text), plugins)
    assert valid.data["jobtype_extra"] == {"gomod": "go.mod"}
    assert "docker" not in valid.data
    assert (
        "field 'docker' (line 6): means nothing for job type 'golang' (only docker-proxy "
        "reads it, as jobtype_extra); it is ignored: remove it" in valid.warnings[2]
    )


def test_image_type_docker_is_ignored_and_any_other_refused(plugins: PluginManager) -> None:
    base = HEAD + "jobtype: python3:latest\njobtype_extra:\n  entrypoint_path: a.py\n"
    valid = validate_manifest(parse_manifest(base + "image_type: docker\n"), plugins)
    assert "image_type" not in valid.data
    assert valid.warnings[0].startswith("field 'image_type' (line 6): means nothing here")
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(base + "image_type: packer\n"), plugins)
    assert caught.value.problems == [
        "field 'image_type' (line 6): 'packer' is not supported: Racetrack builds Docker "
        "(OCI) images only; remove the field"
    ]


def test_a_section_that_is_not_a_mapping_is_one_problem(plugins: PluginManager) -> None:
    text = HEAD + "jobtype: python3:latest\npython: adder.py\n"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(text), plugins)
    assert caught.value.problems[-1] == (
        "field 'python' (line 4): 'python' is the older spelling of 'jobtype_extra' and must "
        "be a mapping of job-type settings (like entrypoint_path: entrypoint.py)"
    )


PRIMER = (
    "name: primer\nowner_email: sample@example.com\njobtype: python3:latest\n"
    "jobtype_extra:\n  entrypoint_path: entrypoint.py\n"
)


def test_job_yaml_wins_over_fatman_yaml_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(PRIMER)
    (tmp_path / "fatman.yaml").write_text(PRIMER.replace("primer", "other"))
    manifest = load_manifest(tmp_path)
    assert manifest.data["name"] == "primer"
    assert manifest.warnings == [
        f"both job.yaml and fatman.yaml are in {tmp_path}: job.yaml is used and fatman.yaml "
        "ignored; delete fatman.yaml"
    ]


def test_original_python3_options_are_accepted_with_warnings_where_they_mean_nothing(
    plugins: PluginManager,
) -> None:
    text = PRIMER + (
        "  python_version: '3.11'\n"
        "  debian_version: slim-bookworm\n"
        "  check_requirements: true\n"
        "  max_concurrency: 2\n"
        "  max_concurrency_queue: 5\n"
        "  memray_profiler: true\n"
    )
    local = validate_manifest(parse_manifest(text), plugins, default_target="local")
    assert [w.partition(":")[0] for w in local.warnings] == [
        "field 'jobtype_extra.debian_version' (line 7)",
        "field 'jobtype_extra.memray_profiler' (line 11)",
    ]
    assert "means nothing on the local target" in local.warnings[0]
    docker = validate_manifest(parse_manifest(text), plugins, default_target="docker")
    assert [w.partition(":")[0] for w in docker.warnings] == [
        "field 'jobtype_extra.memray_profiler' (line 11)"
    ]


def test_python_version_the_local_target_lacks_is_refused_naming_what_it_has(
    plugins: PluginManager,
) -> None:
    text = PRIMER + "  python_version: '3.4'\n"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(text), plugins, default_target="local")
    (problem,) = caught.value.problems
    assert problem.startswith(
        "field 'jobtype_extra.python_version' (line 6): Python 3.4 is not installed on the "
        "server of the local target; available: "
    )
    assert "3.11" in problem.partition("available: ")[2]
    # Without a target (racetrack validate on a laptop) the version is not checked here.
    assert validate_manifest(parse_manifest(text), plugins).data["jobtype_extra"]


def test_a_patch_version_is_matched_exactly_on_the_local_target(plugins: PluginManager) -> None:
    import platform

    ok = PRIMER + f"  python_version: '{platform.python_version()}'\n"
    assert validate_manifest(parse_manifest(ok), plugins, default_target="local")
    missing = PRIMER + "  python_version: '3.11.99'\n"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(missing), plugins, default_target="local")
    assert "Python 3.11.99 is not installed on the server of the local target (a patch " in str(
        caught.value
    )
    assert "write '3.11' for any 3.11); available: " in str(caught.value)
