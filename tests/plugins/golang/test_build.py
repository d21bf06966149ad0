"""Building golang jobs with the real ``go``: go.mod fitting, dependencies, clear refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from racetrack_core.infrastructure import DeployError
from racetrack_plugins.golang import build
from racetrack_plugins.golang.process import GolangProcessRecipe

from .conftest import SAMPLE, VENDORED_SAMPLE, BuildJob, WriteModule, job_spec

pytestmark = pytest.mark.slow

PERFORM = """
package job

func Perform(input map[string]interface{}) (interface{}, error) { return input, nil }
"""


def installed(go: str) -> str:
    version = build.go_version(go)
    return f"{version[0]}.{version[1]}.{version[2]}"


def test_the_sample_builds_from_a_go_mod_written_by_go_1_22(
    build_job: BuildJob, capsys: pytest.CaptureFixture[str]
) -> None:
    env_dir = build_job(SAMPLE)
    assert (env_dir / "bin" / "job").is_file()
    assert not (env_dir / "src").exists()  # the copied sources are not kept
    log = capsys.readouterr().out
    assert "'go 1.22.0' read as 'go 1.19'" in log
    assert "dropped 'toolchain go1.22.4'" in log
    assert "dependencies from GOPROXY=off" in log


def test_a_vendored_dependency_builds_without_any_network(
    build_job: BuildJob, capsys: pytest.CaptureFixture[str]
) -> None:
    env_dir = build_job(VENDORED_SAMPLE, GOPROXY="off")
    assert (env_dir / "bin" / "job").is_file()
    assert "dependencies from vendor/" in capsys.readouterr().out


def file_proxy(root: Path) -> str:
    """A GOPROXY serving example.com/greeting v1.0.0 from files (the proxy protocol)."""
    versions = root / "example.com" / "greeting" / "@v"
    versions.mkdir(parents=True)
    module = "module example.com/greeting\n\ngo 1.22.0\n"
    (versions / "list").write_text("v1.0.0\n")
    (versions / "v1.0.0.info").write_text(json.dumps({"Version": "v1.0.0"}))
    (versions / "v1.0.0.mod").write_text(module)
    with zipfile.ZipFile(versions / "v1.0.0.zip", "w") as archive:
        archive.writestr("example.com/greeting@v1.0.0/go.mod", module)
        source = 'package greeting\n\nfunc Hello(name string) string { return "Hi " + name }\n'
        archive.writestr("example.com/greeting@v1.0.0/greeting.go", source)
    return root.as_uri()


def test_modules_come_through_the_configured_goproxy(
    build_job: BuildJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "go.mod").write_text((VENDORED_SAMPLE / "go.mod").read_text())
    (job / "greet.go").write_text((VENDORED_SAMPLE / "greet.go").read_text())
    with pytest.raises(DeployError, match="not in vendor/; run 'go mod vendor'") as refused:
        build_job(job)
    assert "GOPROXY=off" in refused.value.log_tail

    # The site's proxy, set in the server's environment, is passed into the build.
    monkeypatch.setenv("GOPROXY", file_proxy(tmp_path / "proxy"))
    monkeypatch.setenv("GOSUMDB", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    assert (build_job(job) / "bin" / "job").is_file()


def test_a_compile_error_is_reported_with_its_line(
    build_job: BuildJob, write_module: WriteModule
) -> None:
    job = write_module(**{"job.go": PERFORM.replace("return input", "return undefinedName")})
    with pytest.raises(DeployError, match="go build failed") as refused:
        build_job(job)
    assert "job.go:3" in refused.value.log_tail
    assert "undefined: undefinedName" in refused.value.log_tail


def test_code_needing_a_newer_go_names_both_versions(
    go: str, build_job: BuildJob, write_module: WriteModule
) -> None:
    uses_min = PERFORM.replace("return input, nil", "return min(1, 2), nil")
    job = write_module("go 1.21.0", **{"job.go": uses_min})
    with pytest.raises(DeployError) as refused:
        build_job(job)
    assert str(refused.value) == (
        f"go.mod asks for Go 1.21.0 and this server has Go {installed(go)}, which cannot build "
        "this code: write the job for Go 1.19 (see the build log), or deploy it to a target "
        "with Go 1.21.0 or newer"
    )


def test_loop_variables_shared_before_go_1_22_are_refused(
    go: str, build_job: BuildJob, write_module: WriteModule
) -> None:
    source = """
    package job

    import "sync"

    func Perform(input map[string]interface{}) (interface{}, error) {
        var group sync.WaitGroup
        seen := make(chan int, 3)
        for _, n := range []int{1, 2, 3} {
            group.Add(1)
            go func() { defer group.Done(); seen <- n }()
        }
        group.Wait()
        return len(seen), nil
    }
    """
    job = write_module("go 1.22.0", **{"job.go": source})
    with pytest.raises(DeployError, match=r"one variable where Go 1\.22 gives one per turn") as e:
        build_job(job)
    assert "Go 1.22.0 or newer" in str(e.value)
    assert "loop variable n captured by func literal" in e.value.log_tail
    # Under go 1.21 the code meant what Go 1.19 does: it builds.
    (job / "go.mod").write_text("module example.com/job\n\ngo 1.19\n")
    assert (build_job(job) / "bin" / "job").is_file()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"main.go": "package main\n\nfunc main() {}\n"}, "are 'package main'"),
        ({"job.go": "package job\n\nfunc Run() {}\n"}, "no func Perform in the Go files"),
        ({"README.md": "no Go here"}, "no .go file next to go.mod"),
        (
            {"job.go": "package job\n\nfunc Perform() {}\n"},
            "Perform must be func Perform\\(input map",
        ),
        ({"job.go": PERFORM, "racetrack_job_wrapper__x.go": "package x\n"}, "rename the folder"),
    ],
)
def test_modules_that_cannot_be_served_are_refused(
    build_job: BuildJob, write_module: WriteModule, files: dict[str, str], message: str
) -> None:
    with pytest.raises(DeployError, match=message):
        build_job(write_module(**files))


def test_links_out_of_the_job_are_refused(
    build_job: BuildJob, write_module: WriteModule, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("server secret")
    job = write_module(**{"job.go": PERFORM})
    (job / "data").mkdir()
    (job / "data" / "inside.txt").symlink_to("../go.mod")  # a relative link inside: fine
    (job / "data" / "leak.go").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(DeployError, match=r"'data/leak\.go' is a symbolic link that leads out"):
        build_job(job)


def test_a_missing_go_mod_names_the_field(build_job: BuildJob, tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    with pytest.raises(DeployError, match=r"'go\.mod' not found in the job directory"):
        build_job(tmp_path / "job")


def test_the_environment_key_follows_the_job_files(go: str, tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "go.mod").write_text("module example.com/job\n")
    recipe = GolangProcessRecipe()
    first = recipe.environment_key(job_spec(job, tmp_path))
    assert first == recipe.environment_key(job_spec(job, tmp_path))
    (job / "job.go").write_text(PERFORM)
    assert recipe.environment_key(job_spec(job, tmp_path)) != first
    assert (
        recipe.environment_key(job_spec(job, tmp_path, build_env={"GOPROXY": "file:///x"})) != first
    )
