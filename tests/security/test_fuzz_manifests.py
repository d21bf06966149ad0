"""Fuzzing the manifest loader and validator: any text, any structure, any ``-e`` override gives
a valid manifest or a ManifestError with a message, nothing else, quickly and in bounded memory
(issue 15)."""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from racetrack_core.errors import ManifestError
from racetrack_core.manifest import dump_yaml, parse_manifest, received_manifest
from racetrack_core.plugins import PluginManager
from racetrack_core.schema import ValidatedManifest, validate_manifest
from tests.security.memory import MIB, allocations_below

# Manifests are small: each example must end well within a second (D4 took 131 s), and
# allocate little (an alias bomb expanded would take gigabytes).
QUICK = settings(deadline=1500)
MANIFEST_MEMORY = 32 * MIB

FIELDS = ["name", "owner_email", "jobtype", "version", "git", "remote", "directory", "extends",
          "jobtype_extra", "labels", "replicas", "resources", "memory_min", "memory_max",
          "cpu_min", "cpu_max", "runtime_env", "secret_runtime_env_file", "build_env",
          "secret_build_env_file", "system_dependencies", "requirements_path",
          "entrypoint_path", "entrypoint_class", "public_endpoints", "infrastructure_target",
          "python3:latest", "python3:1.0", "docker-proxy:latest"]  # fmt: skip

# Pieces of YAML syntax (anchors, aliases, merges, tags, flow and block collections, quoting,
# documents) with field names and odd scalars between them.
YAML_PIECES = [": ", "\n", "\n  ", "\n    ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ",
               "*b", "<<: *a", "<<: [*a, *b]", "? ", "!!str ", "!!int ", "!!float ", "!!bool ",
               "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!python/object:os.system ",
               "!foo ", "'", '"', "|\n  ", ">-\n  ", "#", "---\n", "...\n", "%YAML 1.2\n---\n",
               "~", "null", "yes", "0x1F", "1e400", "-.inf", ".nan", "2023-02-30",
               "2023-13-01 10:00:00", "1.0.0", "12:30:45", "\t", "\\u0000", "\x85", "\ufeff",
               "a" * 300, "\u202e"]  # fmt: skip


@functools.cache
def plugins() -> PluginManager:
    return PluginManager().load()


def check_outcome(load: Any) -> None:
    """Run ``load()`` then validation: a ValidatedManifest or a ManifestError with a message."""
    refused: ManifestError | None = None
    plugins()  # loaded once, outside the bound
    try:
        with allocations_below(MANIFEST_MEMORY, "loading and validating one manifest"):
            validated = validate_manifest(load(), plugins())
    except ManifestError as error:
        refused = error
    if refused is not None:
        assert refused.problems, "a ManifestError without any problem"
        assert all(isinstance(p, str) and p.strip() for p in refused.problems), refused.problems
        assert str(refused).strip()
        return
    assert isinstance(validated, ValidatedManifest)
    assert validated.name
    assert validated.version
    json.dumps(validated.data)  # what is accepted can be stored and sent as JSON


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["adder", "1.0.0", "a@b.c", "python3:latest", "1Gi", "500m", ".", "\n"]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=25,
)
manifests = st.dictionaries(keys, structures, max_size=10)
near_valid = st.fixed_dictionaries(
    {"name": st.text(max_size=20), "owner_email": st.just("a@b.c"),
     "jobtype": st.sampled_from(["python3:latest", "python3", "docker-proxy:latest", "x:y"])},
    optional={"version": st.text(max_size=12), "jobtype_extra": structures,
              "git": structures, "labels": structures, "replicas": scalars,
              "resources": structures, "runtime_env": structures},
)  # fmt: skip


@QUICK
@given(st.text(max_size=400))
@example("name: 2023-02-30")
@example("a: !!omap [a: 1]")
@example("? {a: 1}\n: c")
@example("a: !foo x\nname: !!python/object:os.system x")
def test_any_text_loads_or_gets_a_manifest_error(text: str) -> None:
    check_outcome(lambda: parse_manifest(text))


@QUICK
@given(st.lists(st.one_of(st.sampled_from(YAML_PIECES), keys), max_size=40).map("".join))
def test_yaml_syntax_soup_loads_or_gets_a_manifest_error(text: str) -> None:
    check_outcome(lambda: parse_manifest(text))


@QUICK
@given(st.one_of(manifests, near_valid))
def test_any_structure_written_as_yaml_validates_or_gets_a_manifest_error(data: Any) -> None:
    check_outcome(lambda: parse_manifest(dump_yaml(data)))


@QUICK
@given(st.one_of(manifests, near_valid))
def test_any_structure_sent_to_the_api_validates_or_gets_a_manifest_error(data: Any) -> None:
    check_outcome(lambda: received_manifest(data))


@QUICK
@given(near_valid, st.lists(st.text(max_size=40), max_size=3))
@example({"name": "adder", "owner_email": "a@b.c", "jobtype": "python3:latest"}, ["a=!!int x"])
def test_any_extra_variable_applies_or_gets_a_manifest_error(
    data: dict[str, Any], extra: list[str]
) -> None:
    check_outcome(lambda: parse_manifest(dump_yaml(data), extra_vars=extra))
