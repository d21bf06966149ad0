"""Installing and uninstalling plugins in the Python environment the CLI runs in, with uv.

An install is checked by loading every plugin in a fresh interpreter (the running one cannot
see packages it did not start with); when loading fails, whatever the install added or changed
is put back, so that no plugin is left half-installed.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import click

ENTRY_POINT_GROUP = "racetrack.plugins"
OWN_DISTRIBUTION = "racetrack-platform"  # Racetrack's own distribution, with the built-ins


class InstallError(click.ClickException):
    """An install or uninstall that could not be done; its message is one sentence."""


@dataclass
class InstallReport:
    """What an install changed: distributions (name to version) and the plugins they provide."""

    distributions: dict[str, str] = field(default_factory=dict)
    plugins: list[dict[str, Any]] = field(default_factory=list)


def normalize(name: str) -> str:
    """A distribution name as packaging compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_spec(spec: str) -> str:
    """A requirement as given, or a directory's or wheel's path made absolute.

    Raise InstallError for something that looks like a path and does not exist.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    is_url = "://" in spec or "@" in spec
    looks_like_path = (
        spec.startswith((".", "~", "/"))
        or "/" in spec
        or spec.endswith((".whl", ".tar.gz", ".zip"))
    )
    if looks_like_path and not is_url:
        raise InstallError(
            f"no such file or directory: '{spec}'; give a plugin's directory, a wheel, "
            "or a requirement such as racetrack-hello-jobtype"
        )
    return spec


def install(spec: str) -> InstallReport:
    """Install ``spec`` with uv, then check that every plugin still loads.

    Return what changed. Raise InstallError, with the environment as it was, if uv fails or
    the plugins do not load afterwards.
    """
    target = resolve_spec(spec)
    before = distributions()
    rebuilt = _directory_distribution(target)
    rebuild = ["--reinstall-package", rebuilt] if rebuilt else []
    run_uv("install", *rebuild, target, failure=f"could not install '{spec}'")
    after = distributions()
    changed = {
        name: version
        for name, version in after.items()
        if before.get(name) != version or (rebuilt and name == normalize(rebuilt))
    }
    try:
        plugins = load_plugins_afresh()
    except InstallError as exc:
        try:
            undo(before, changed)
        except InstallError as undo_error:
            raise InstallError(
                f"'{spec}' was installed, but the plugins then failed to load: {exc.message}; "
                f"undoing the install failed too ({undo_error.message}): uninstall "
                f"{', '.join(sorted(changed))} by hand"
            ) from None
        raise InstallError(
            f"'{spec}' was installed, but the plugins then failed to load, so it was "
            f"uninstalled again: {exc.message}"
        ) from None
    new = [p for p in plugins if normalize(p.get("distribution") or "") in changed]
    return InstallReport(distributions=changed, plugins=new)


def _directory_distribution(target: str) -> str | None:
    """The distribution name of a source directory, which uv must rebuild on every install.

    Without ``--reinstall-package`` uv keeps an installed (or cached) build of a source tree
    that was edited since, as long as its version has not changed.
    """
    pyproject = Path(target) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    return str(name)


def undo(before: dict[str, str], changed: dict[str, str]) -> None:
    """Put back the distributions that an install changed to another version; remove the rest.

    A distribution rebuilt from its directory at the same version cannot be put back, and is
    removed too: a plugin that does not load would break every command.
    """
    added = sorted(name for name in changed if before.get(name) in (None, changed[name]))
    replaced = sorted(
        f"{name}=={before[name]}"
        for name in changed
        if before.get(name) not in (None, changed[name])
    )
    if added:
        run_uv("uninstall", *added, failure=f"could not uninstall {', '.join(added)} again")
    if replaced:
        run_uv("install", *replaced, failure=f"could not reinstall {', '.join(replaced)}")


def uninstall(name: str) -> tuple[str, list[str]]:
    """Uninstall the distribution that provides plugin ``name`` (or is named ``name``).

    Return the distribution's name and its plugins. Refuse Racetrack's built-in plugins.
    """
    if normalize(name) in {OWN_DISTRIBUTION, "racetrack"}:
        raise InstallError(
            f"'{name}' is Racetrack itself, not a plugin: it cannot be uninstalled with "
            "'racetrack plugin uninstall'"
        )
    dist, plugin_names = plugin_distribution(name)
    if normalize(dist) == OWN_DISTRIBUTION:
        raise InstallError(
            f"'{name}' is a built-in plugin, part of the {OWN_DISTRIBUTION} distribution, and "
            f"cannot be uninstalled; to turn it off, set RACETRACK_DISABLE_PLUGINS={name}"
        )
    run_uv("uninstall", dist, failure=f"could not uninstall {dist}")
    return dist, plugin_names


def plugin_distribution(name: str) -> tuple[str, list[str]]:
    """The distribution that declares plugin ``name``, or is named ``name``, and its plugins.

    Raise InstallError if there is none.
    """
    plugins_of: dict[str, list[str]] = {}
    dist_names: dict[str, str] = {}
    owner = None
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.dist is None:
            continue
        key = normalize(entry_point.dist.name)
        dist_names[key] = entry_point.dist.name
        plugins_of.setdefault(key, []).append(entry_point.name)
        if entry_point.name == name:
            owner = key
    if owner is None and normalize(name) in plugins_of:
        owner = normalize(name)
    if owner is not None:
        return dist_names[owner], sorted(plugins_of[owner])
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        installed = ", ".join(sorted(n for names in plugins_of.values() for n in names)) or "none"
        raise InstallError(
            f"no plugin or distribution named '{name}' is installed. Installed plugins: {installed}"
        ) from None
    raise InstallError(
        f"'{name}' is installed but provides no Racetrack plugin, so 'racetrack plugin "
        "uninstall' leaves it alone"
    )


def distributions() -> dict[str, str]:
    """Every distribution installed in this environment: normalized name to version."""
    listing = run_uv("list", "--format", "json", capture=True, failure="could not list packages")
    return {normalize(item["name"]): str(item["version"]) for item in json.loads(listing)}


def load_plugins_afresh() -> list[dict[str, Any]]:
    """Load every plugin in a new interpreter; return what ``plugin list --json`` gives.

    Raise InstallError with the loading error.
    """
    command = [sys.executable, "-m", "racetrack_cli", "plugin", "list", "--local", "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("Error: ") if lines else f"exit {completed.returncode}"
        raise InstallError(reason)
    plugins: list[dict[str, Any]] = json.loads(completed.stdout)
    return plugins


def run_uv(command: str, *args: str, failure: str, capture: bool = False) -> str:
    """Run ``uv pip COMMAND --python <this interpreter> ARGS``.

    Its progress goes to stderr; with ``capture`` its stdout is returned instead. Raise
    InstallError starting with ``failure`` when uv fails.
    """
    from uv import find_uv_bin

    argv = [find_uv_bin(), "pip", command, "--python", sys.executable, *args]
    stderr = _stderr_fd()
    output = ""
    if capture or stderr is None:
        captured = subprocess.run(argv, capture_output=True, text=True, check=False)
        returncode, output = captured.returncode, captured.stdout
        if not capture or returncode != 0:
            click.echo(captured.stdout + captured.stderr, err=True, nl=False)
    else:
        sys.stderr.flush()
        returncode = subprocess.run(argv, stdout=stderr, stderr=stderr, check=False).returncode
    if returncode != 0:
        raise InstallError(f"{failure}: uv exited with code {returncode} (see above)")
    return output if capture else ""


def _stderr_fd() -> int | None:
    """The file descriptor of stderr, or None when stderr is not a file (as under a test)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
