"""Installing and uninstalling plugins in the Python environment Racetrack runs in, with uv.

Lifecycle's plugin routes (a staff upload) and ``racetrack plugin install --local`` both come
here. An install is checked by loading every plugin in a fresh interpreter (the running one
cannot see packages it did not start with); when loading fails, whatever the install added or
changed is put back, so that no plugin is left half-installed.

uv's output is always captured. A caller that wants to show it as it comes passes ``log``
(the CLI writes it on stderr); when uv fails, :class:`InstallError` carries the end of it,
with any ``user:password@`` of a URL masked, so that an HTTP answer can show why.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from racetrack_core.errors import RacetrackError
from racetrack_core.plugins import ENTRY_POINT_GROUP, OWN_DISTRIBUTION
from racetrack_core.source.git import scrub

Log = Callable[[str], None]
"""Receives uv's output (stdout and stderr, as text) after each uv command."""

#: How much of uv's output an error keeps: its last lines, which say what went wrong.
OUTPUT_LINES = 25
OUTPUT_CHARS = 4000


class InstallError(RacetrackError):
    """An install or uninstall that could not be done.

    ``message`` is one sentence; ``output`` is the end of uv's output when uv failed (else
    empty). ``str(error)`` is the sentence followed by that output.
    """

    def __init__(self, message: str, output: str = "", *, refusal: bool = False) -> None:
        message = scrub(message, ())  # a requirement may be a URL with a password in it
        self.message = message
        self.output = output
        #: Raised by an install's check, which refused what the install would leave.
        self.refusal = refusal
        super().__init__(f"{message}; uv said:\n{output}" if output else message)


class NotInstalled(InstallError):
    """An uninstall of a plugin or distribution that is not installed."""


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


#: Checks the plugins an install leaves (their descriptions); raises InstallError to undo it.
Check = Callable[[list[dict[str, Any]]], None]


def install(
    spec: str,
    log: Log | None = None,
    *,
    uv_options: Sequence[str] = (),
    check: Check | None = None,
) -> InstallReport:
    """Install ``spec`` with uv, then check that every plugin still loads.

    ``uv_options`` go to ``uv pip install`` before the spec (an index, constraints);
    ``check`` may refuse the plugins the install leaves. Return what changed. Raise
    InstallError, with the environment as it was, if uv fails, the plugins do not load
    afterwards or ``check`` refuses them.
    """
    target = resolve_spec(spec)
    before = distributions()
    rebuilt = _directory_distribution(target)
    rebuild = ["--reinstall-package", rebuilt] if rebuilt else []
    failure = f"could not install '{spec}'"
    run_uv("install", *rebuild, *uv_options, target, failure=failure, log=log)
    after = distributions()
    changed = {
        name: version
        for name, version in after.items()
        if before.get(name) != version or (rebuilt and name == normalize(rebuilt))
    }
    try:
        plugins = load_plugins_afresh()
        if check is not None:
            check(plugins)
    except InstallError as exc:
        try:
            undo(before, changed, log=log, uv_options=uv_options)
        except InstallError as undo_error:
            raise InstallError(
                f"'{spec}' was installed, but the plugins then failed to load: {exc.message}; "
                f"undoing the install failed too ({undo_error.message}): uninstall "
                f"{', '.join(sorted(changed))} by hand",
                undo_error.output,
            ) from None
        if exc.refusal:
            raise InstallError(
                f"'{spec}' is refused, and its install undone: {exc.message}", refusal=True
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


def undo(
    before: dict[str, str],
    changed: dict[str, str],
    log: Log | None = None,
    uv_options: Sequence[str] = (),
) -> None:
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
        failure = f"could not uninstall {', '.join(added)} again"
        run_uv("uninstall", *added, failure=failure, log=log)
    if replaced:
        failure = f"could not reinstall {', '.join(replaced)}"
        run_uv("install", *uv_options, *replaced, failure=failure, log=log)


def uninstall(name: str, log: Log | None = None) -> tuple[str, list[str]]:
    """Uninstall the distribution that provides plugin ``name`` (or is named ``name``).

    Return the distribution's name and its plugins. Refuse Racetrack's built-in plugins.
    """
    dist, plugin_names = removable_distribution(name)
    run_uv("uninstall", dist, failure=f"could not uninstall {dist}", log=log)
    return dist, plugin_names


def removable_distribution(name: str) -> tuple[str, list[str]]:
    """The distribution that ``uninstall(name)`` would remove, and its plugins; raise
    InstallError for Racetrack itself, a built-in plugin, or a name nothing answers to."""
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
        raise NotInstalled(
            f"no plugin or distribution named '{name}' is installed. Installed plugins: {installed}"
        ) from None
    raise InstallError(
        f"'{name}' is installed but provides no Racetrack plugin, so 'racetrack plugin "
        "uninstall' leaves it alone"
    )


def distributions() -> dict[str, str]:
    """Every distribution installed in this environment: normalized name to version."""
    listing = run_uv("list", "--format", "json", failure="could not list packages")
    return {normalize(item["name"]): str(item["version"]) for item in json.loads(listing)}


_DESCRIBE = (
    "from racetrack_core.plugin_install import describe_installed_plugins; "
    "describe_installed_plugins()"
)


def load_plugins_afresh() -> list[dict[str, Any]]:
    """Load every plugin in a new interpreter; return each one's description (as the API's
    plugin list gives it).

    Raise InstallError with the loading error.
    """
    command = [sys.executable, "-c", _DESCRIBE]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        raise InstallError(lines[-1] if lines else f"exit {completed.returncode}")
    plugins: list[dict[str, Any]] = json.loads(completed.stdout)
    return plugins


def describe_installed_plugins() -> None:
    """Load every installed plugin and print their descriptions as JSON on stdout.

    Run by :func:`load_plugins_afresh` in a new interpreter. A plugin that fails to load is
    one line on stderr, and exit code 1.
    """
    from racetrack_core.errors import PluginError
    from racetrack_core.plugins import PluginManager

    try:
        infos = [info.as_dict() for info in PluginManager().load().describe()]
    except PluginError as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(infos))


def run_uv(command: str, *args: str, failure: str, log: Log | None = None) -> str:
    """Run ``uv pip COMMAND --python <this interpreter> ARGS``; return its stdout.

    Hand its output to ``log`` (a listing's stdout excepted). Raise InstallError starting with
    ``failure``, carrying the end of uv's output, when uv fails.
    """
    from uv import find_uv_bin

    argv = [find_uv_bin(), "pip", command, "--python", sys.executable, *args]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    shown = completed.stderr if command == "list" else completed.stdout + completed.stderr
    if log is not None and shown:
        log(shown)
    if completed.returncode != 0:
        output = trim_output(completed.stdout + completed.stderr)
        raise InstallError(f"{failure}: uv exited with code {completed.returncode}", output)
    return completed.stdout


def trim_output(text: str) -> str:
    """The last lines of uv's output, at most OUTPUT_CHARS, with URL credentials masked."""
    lines = [
        line.rstrip()
        for line in scrub(text, ()).splitlines()
        if line.strip() and not line.startswith("Using Python")  # names the server's folder
    ]
    kept = "\n".join(lines[-OUTPUT_LINES:])
    return kept if len(kept) <= OUTPUT_CHARS else "..." + kept[-OUTPUT_CHARS:]
