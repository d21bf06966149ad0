"""``racetrack plugin list|install|uninstall|new``: the plugins of an environment.

Without ``--local`` they act on the server of the remote, through the Lifecycle API (installing
and uninstalling need a staff account); with ``--local`` on the Python environment the command
runs in (in the embedded default, the server's own). ``new`` writes a job-type plugin's project
(``plugin_skeleton``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from racetrack_cli.client import ClientError, Lifecycle, remote_option
from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import cell, print_json, print_table, warn

TABLE_HEADERS = ("NAME", "VERSION", "BUILT-IN", "JOB TYPES", "TARGETS", "HOOKS")

local_option = click.option(
    "--local",
    is_flag=True,
    help="Act on the plugins of this Python environment (the embedded server's own).",
)


def refuse_remote_with_local(local: bool, remote: str | None) -> None:
    if local and remote:
        raise click.UsageError("--local acts on this Python environment; drop --remote")


@click.group()
def plugin() -> None:
    """List, install and uninstall plugins.

    Plugins provide job types, infrastructure targets, manifest checks and more.
    """


@plugin.command("list")
@local_option
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def list_plugins(ctx: click.Context, local: bool, remote: str | None, as_json: bool) -> None:
    """List the plugins with their versions, job types, infrastructure targets and hooks."""
    refuse_remote_with_local(local, remote)
    infos: list[dict[str, Any]]
    if local:
        infos = [info.as_dict() for info in local_plugins(ctx).manager.describe()]
    else:
        answer = Lifecycle.connect(remote).get("/plugin")
        infos = [info for info in answer if isinstance(info, dict)]
    if as_json:
        print_json(infos)
        return
    rows = [
        (
            str(info.get("name")),
            cell(info.get("version")),
            "yes" if info.get("builtin") else "no",
            cell(info.get("job_types")),
            cell(info.get("infrastructure_targets")),
            cell(info.get("hooks")),
        )
        for info in infos
    ]
    print_table(TABLE_HEADERS, rows)


force_option = click.option(
    "--force",
    is_flag=True,
    help="Make the change even though deployed jobs use a job type it removes (they stop working).",
)


@plugin.command()
@click.argument("spec")
@local_option
@remote_option
@force_option
def install(spec: str, local: bool, remote: str | None, force: bool) -> None:
    """Install or upgrade a plugin. SPEC is a wheel file, a requirement from the server's
    package index (racetrack-hello-jobtype==0.1.0) or a git URL (git+https://host/repo.git);
    --local also takes a directory.

    On a server (staff only) the wheel is uploaded, or the server installs the requirement
    or URL itself, and the other replicas follow. The install is checked by loading every
    plugin afresh; if that fails, it is undone. An upgrade that drops a job type version
    that deployed jobs use is refused unless --force.
    """
    refuse_remote_with_local(local, remote)
    if not local:
        install_on_server(spec, remote, force)
        return
    from racetrack_core import plugin_install
    from racetrack_core.plugins import ENTRY_POINT_GROUP

    with uv_errors():
        report = plugin_install.install(spec, log=echo_uv)
    if not report.distributions:
        warn(f"'{spec}' is installed already: nothing changed")
    elif not report.plugins:
        warn(
            f"'{spec}' was installed, but it provides no Racetrack plugin "
            f"(no entry point in the group '{ENTRY_POINT_GROUP}')"
        )
    for name, version in sorted(report.distributions.items()):
        click.echo(f"installed {name} {version}")
    for info in report.plugins:
        click.echo(_describe(info))


@plugin.command()
@click.argument("name")
@local_option
@remote_option
@force_option
def uninstall(name: str, local: bool, remote: str | None, force: bool) -> None:
    """Uninstall a plugin: NAME is the plugin's name or its distribution's.

    On a server this needs a staff account, and is refused while deployed jobs use the
    plugin's job types, unless --force. Built-in plugins cannot be uninstalled;
    RACETRACK_DISABLE_PLUGINS turns them off.
    """
    refuse_remote_with_local(local, remote)
    if not local:
        lifecycle = Lifecycle.connect(remote)
        lifecycle.require_token()
        params = {"force": "true"} if force else None
        answer = lifecycle.request("DELETE", f"/plugin/{quote(name, safe='')}", params=params)
        click.echo(f"uninstalled {name} from {lifecycle.url}", err=True)
        warn_stopped(answer)
        return
    from racetrack_core import plugin_install

    with uv_errors():
        dist, plugin_names = plugin_install.uninstall(name, log=echo_uv)
    names = ", ".join(plugin_names)
    click.echo(f"uninstalled {dist} (plugin{'s' if len(plugin_names) != 1 else ''} {names})")


@plugin.command()
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the project [default: ./racetrack-NAME-jobtype].",
)
def new(name: str, directory: Path | None) -> None:
    """Write the project of a new job-type plugin; NAME is the job type's name.

    The project has a pyproject.toml with the plugin's entry point, the plugin module with a
    process recipe and an image recipe, a minimal runtime, tests on Racetrack's pytest
    fixtures (one deploys the example job on a real server), a README and an example job. It
    passes its own tests as written; docs/plugins.md goes from here to a deployed job.
    """
    from racetrack_cli.plugin_skeleton import PluginNames, SkeletonError, write_project

    try:
        names = PluginNames.of(name)
        destination = directory or Path(names.distribution)
        written = write_project(names, destination)
    except SkeletonError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(destination / path)
    click.echo(
        f"wrote plugin {names.name} (distribution {names.distribution}); next: cd "
        f"{shlex_quote(str(destination))} && pip install -e . pytest && pytest",
        err=True,
    )


def echo_uv(output: str) -> None:
    """Show uv's output as it comes, on stderr."""
    click.echo(output, err=True, nl=False)


@contextlib.contextmanager
def uv_errors() -> Iterator[None]:
    """Turn an InstallError into one line: uv's output, if any, is on stderr already."""
    from racetrack_core.plugin_install import InstallError

    try:
        yield
    except InstallError as exc:
        raise click.ClickException(exc.message) from None


def install_on_server(spec: str, remote: str | None, force: bool = False) -> None:
    """Upload a wheel to the server of the remote, or have it install a requirement or URL."""
    path = Path(spec).expanduser()
    is_wheel = path.suffix == ".whl" or path.is_file()
    if path.is_dir() or (is_wheel and path.suffix != ".whl"):
        raise click.BadParameter(
            f"'{spec}' is not a wheel: a server installs wheels (build one with "
            f"uv build --wheel {shlex_quote(spec)}), requirements and git URLs, or use --local "
            "for this environment",
            param_hint="'SPEC'",
        )
    lifecycle = Lifecycle.connect(remote)
    lifecycle.require_token()
    params = {"force": "true"} if force else None
    if is_wheel:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from None
        answer = lifecycle.request(
            "POST",
            f"/plugin/upload/{quote(path.name, safe='')}",
            content=content,
            params=params,
            timeout=600,
        )
        shown = path.name
        infos = answer if isinstance(answer, list) else [answer]
    else:
        answer = lifecycle.request(
            "POST", "/plugin/install", json_body={"source": spec, "force": force}, timeout=600
        )
        shown = mask_url(spec)
        infos = answer.get("plugins", []) if isinstance(answer, dict) else []
        warn_stopped(answer)
    click.echo(f"installed {shown} on {lifecycle.url}", err=True)
    for info in infos:
        if isinstance(info, dict) and info.get("name"):
            click.echo(_describe(info))


def warn_stopped(answer: object) -> None:
    """Name the jobs a forced change left without their job type."""
    stopped = answer.get("jobs_stopped") if isinstance(answer, dict) else None
    if stopped:
        warn(f"these jobs no longer have their job type and stop working: {'; '.join(stopped)}")


def mask_url(text: str) -> str:
    """``text`` with a URL's ``user:password@`` masked."""
    import re

    return re.sub(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _describe(info: dict[str, Any]) -> str:
    parts = [f"plugin {info['name']} {info.get('version') or ''}".rstrip()]
    if info.get("job_types"):
        parts.append(f"job types {', '.join(info['job_types'])}")
    if info.get("infrastructure_targets"):
        parts.append(f"targets {', '.join(info['infrastructure_targets'])}")
    return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if parts[1:] else "")
