"""Commands on deployed jobs: list, logs, build-logs, delete, move and call."""

from __future__ import annotations

import json
import shlex
import time
from typing import Any
from urllib.parse import quote

import click

from racetrack_cli.client import ClientError, Lifecycle, call_job, remote_option
from racetrack_cli.output import print_json, print_table

#: Extra columns of ``racetrack list -c``: header and how to read the cell from a job record.
COLUMNS: dict[str, tuple[str, str]] = {
    "job_type": ("JOB TYPE", "job_type_version"),
    "infrastructure": ("INFRASTRUCTURE", "infrastructure_target"),
    "deployed_by": ("DEPLOYED BY", "deployed_by"),
    "updated_at": ("UPDATED", "update_time"),
    "last_call_at": ("LAST CALL", "last_call_time"),
    "pub_url": ("URL", "pub_url"),
}

version_option = click.option(
    "--version",
    "version",
    default="latest",
    show_default=True,
    help="The job's version: exact, latest, or a pattern such as 1.x.",
)


def job_path(name: str, version: str) -> str:
    return f"/job/{quote(name, safe='')}/{quote(version, safe='')}"


@click.command("list")
@click.option(
    "-c",
    "--column",
    "columns",
    multiple=True,
    type=click.Choice([*COLUMNS, "all"]),
    help="Add a column (repeatable); all adds every one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job records as a JSON array.")
@remote_option
def list_jobs(columns: tuple[str, ...], as_json: bool, remote: str | None) -> None:
    """List the jobs of the remote, most recently updated first."""
    jobs = Lifecycle.connect(remote).get("/job")
    if as_json:
        print_json(jobs)
        return
    chosen = list(COLUMNS) if "all" in columns else list(dict.fromkeys(columns))
    headers = ["NAME", "VERSION", "STATUS", *(COLUMNS[column][0] for column in chosen)]
    rows = [
        [
            str(job.get("name")),
            str(job.get("version")),
            str(job.get("status") or "-").upper(),
            *(_cell(job.get(COLUMNS[column][1]), column) for column in chosen),
        ]
        for job in jobs
    ]
    print_table(headers, rows)


def _cell(value: Any, column: str) -> str:
    if value in (None, ""):
        return "-"
    if column in ("updated_at", "last_call_at") and isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value)


@click.command()
@click.argument("name")
@version_option
@click.option("--tail", default=20, show_default=True, help="Lines to show; 0 for all of them.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@remote_option
def logs(name: str, version: str, tail: int, follow: bool, remote: str | None) -> None:
    """Print what a job has written to its output."""
    lifecycle = Lifecycle.connect(remote)
    path = job_path(name, version)
    if not follow:
        answer = lifecycle.get(f"{path}/logs", tail=tail)
        _echo_text(answer.get("logs", "") if isinstance(answer, dict) else str(answer))
        return
    try:
        with lifecycle.stream_lines(f"{path}/logs/stream", {"tail": tail}) as lines:
            for line in lines:
                click.echo(line)
    except KeyboardInterrupt:
        click.echo("", err=True)


@click.command("build-logs")
@click.argument("name")
@version_option
@click.option("--tail", default=0, show_default=True, help="Lines to show; 0 for all of them.")
@remote_option
def build_logs(name: str, version: str, tail: int, remote: str | None) -> None:
    """Print the build log of the deployment that produced a job."""
    answer = Lifecycle.connect(remote).get(f"{job_path(name, version)}/build-logs", tail=tail)
    _echo_text(answer.get("logs", "") if isinstance(answer, dict) else str(answer))


def _echo_text(text: str) -> None:
    if text:
        click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.argument("name")
@click.option("--version", required=True, help="The exact version to delete.")
@remote_option
def delete(name: str, version: str, remote: str | None) -> None:
    """Stop a job version and remove it from the remote."""
    Lifecycle.connect(remote).delete(job_path(name, version))
    click.echo(f"deleted job {name} {version}", err=True)


@click.command()
@click.argument("name")
@click.option("--version", required=True, help="The exact version to move.")
@click.option(
    "--infrastructure", "target", required=True, metavar="TARGET", help="The target to move to."
)
@remote_option
def move(name: str, version: str, target: str, remote: str | None) -> None:
    """Move a job version to another infrastructure target (it keeps serving meanwhile)."""
    lifecycle = Lifecycle.connect(remote)
    click.echo(f"moving job {name} {version} to {target}...", err=True)
    lifecycle.request(
        "POST",
        f"{job_path(name, version)}/move",
        json_body={"infrastructure_target": target},
        timeout=1800,
    )
    click.echo(f"job {name} {version} now runs on {target}", err=True)


@click.command()
@click.argument("name")
@click.argument("endpoint")
@click.argument("payload")
@version_option
@click.option("--curl", is_flag=True, help="Print the equivalent curl command instead of calling.")
@remote_option
def call(
    name: str, endpoint: str, payload: str, version: str, curl: bool, remote: str | None
) -> None:
    """Call a job's ENDPOINT with PAYLOAD (JSON or YAML) through Pub, and print its answer.

    For example: racetrack call primer /api/v1/perform '{"number": 7907}'
    """
    body = parse_payload(payload)
    lifecycle = Lifecycle.connect(remote)
    job = lifecycle.get(job_path(name, version))
    if not isinstance(job, dict) or not job.get("pub_url"):
        raise ClientError(f"job {name} {version} has no address (pub_url) yet")
    url = str(job["pub_url"]).rstrip("/") + "/" + endpoint.lstrip("/")
    if curl:
        token_command = "racetrack get auth-token" + lifecycle.remote_hint
        click.echo(
            f"curl -X POST {shlex.quote(url)} \\\n"
            '  -H "Content-Type: application/json" \\\n'
            f'  -H "X-Racetrack-Auth: $({token_command})" \\\n'
            f"  -d {shlex.quote(json.dumps(body))}"
        )
        return
    answer, is_json = call_job(url, body, lifecycle.token)
    if not is_json:
        _echo_text(str(answer))
    elif isinstance(answer, dict | list):
        print_json(answer)
    else:
        click.echo(json.dumps(answer))


def parse_payload(text: str) -> Any:
    """A payload given as JSON, or else as YAML; a usage error when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    from racetrack_cli import yaml_subset

    try:
        return yaml_subset.load(text)
    except ValueError as exc:
        raise click.BadParameter(f"neither JSON nor YAML: {exc}", param_hint="'PAYLOAD'") from None
