"""Developer tasks. `nox` runs lint, typing and tests; `nox -s NAME` runs one of them.

Every session installs from `constraints.txt`, so that local runs and CI use the same versions.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_venv = "yes"

CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, *groups: str) -> None:
    group_args = [arg for group in groups for arg in ("--group", group)]
    session.install(*CONSTRAINTS, "--build-constraint", "constraints.txt", "-e", ".", *group_args)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff (no files are changed)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check the packages, tests and samples with mypy in strict mode."""
    install(session, "typing", "tests")
    session.run("mypy")
    session.run("mypy", "sample/python-chain")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite; extra arguments go to pytest (`nox -s tests -- -k manifest`)."""
    install(session, "tests")
    session.run("pytest", *session.posargs)


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Re-pin every dependency in constraints.txt (run it after changing pyproject.toml)."""
    session.run(
        "uv", "pip", "compile", "pyproject.toml", "--group", "dev",
        "--no-header", "--no-annotate", "--universal", "--python-version", "3.11",
        "-o", "constraints.txt",
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark, print one markdown report (`nox -s bench -- --write` saves it).

    Needs `wrk`, `nginx` and `hyperfine` (apt-get install -y wrk nginx hyperfine); takes about
    six minutes.
    """
    install(session)
    session.run("python", "-m", "bench", *session.posargs)
