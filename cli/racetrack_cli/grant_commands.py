"""Who may do what, and what was done: ``grant``, ``grants``, ``revoke`` and ``audit``.

Granting and revoking need a staff account (or a grant of ``call_admin_api``); ``audit`` shows
the events the caller may see.
"""

from __future__ import annotations

from typing import Any

import click

from racetrack_cli.client import Lifecycle, remote_option, segment
from racetrack_cli.output import json_option, print_json, print_table, when

SCOPES = (
    "read_job",
    "deploy_job",
    "deploy_new_family",
    "delete_job",
    "call_job",
    "call_admin_api",
    "full_access",
)

# --- grants ---------------------------------------------------------------------------------


@click.command()
@click.argument("subject_kind", type=click.Choice(["user", "esc", "job_family"]))
@click.argument("subject")
@click.argument("scope", type=click.Choice(SCOPES))
@click.option("--family", help="Only this job family [default: every job].")
@click.option("--version", help="Only this version of the family (needs --family).")
@click.option("--endpoint", help="Only paths under this prefix, such as /api/v1 (needs --family).")
@remote_option
def grant(
    subject_kind: str,
    subject: str,
    scope: str,
    family: str | None,
    version: str | None,
    endpoint: str | None,
    remote: str | None,
) -> None:
    """Grant SUBJECT (a user, an ESC or a job family) a SCOPE; print the grant's ID (staff).

    For example, racetrack grant esc billing call_job --family adder, or, for one job calling
    another, racetrack grant job_family python-chain call_job --family primer.
    """
    if (version or endpoint) and not family:
        raise click.UsageError("--version and --endpoint need --family")
    body = {
        "subject_kind": subject_kind,
        "subject_name": subject,
        "scope": scope,
        "job_family": family,
        "job_version": version,
        "endpoint": endpoint,
    }
    answer = Lifecycle.connect(remote).post("/grants", body)
    click.echo(answer.get("id") if isinstance(answer, dict) else answer)
    click.echo(f"granted {scope} on {_target(answer)} to {answer.get('subject')}", err=True)


def _target(record: dict[str, Any]) -> str:
    family = record.get("job_family")
    if not family:
        return "every job"
    text = f"job {family}"
    if record.get("job_version"):
        text += f" {record['job_version']}"
    if record.get("endpoint"):
        text += f" under {record['endpoint']}"
    return text


@click.command()
@click.option("--subject-kind", type=click.Choice(["user", "esc", "job_family"]))
@click.option("--subject", help="Only the grants of this subject.")
@click.option("--family", help="Only grants on this job family.")
@click.option("--mine", is_flag=True, help="Your own grants (needs no staff).")
@json_option
@remote_option
def grants(
    subject_kind: str | None,
    subject: str | None,
    family: str | None,
    mine: bool,
    as_json: bool,
    remote: str | None,
) -> None:
    """List grants (staff), or --mine."""
    lifecycle = Lifecycle.connect(remote)
    if mine:
        records = lifecycle.get("/grants/mine")
    else:
        params = {"subject_kind": subject_kind, "subject_name": subject, "job_family": family}
        records = lifecycle.get("/grants", **{k: v for k, v in params.items() if v})
    if as_json:
        print_json(records)
        return
    rows = [
        (str(r.get("id")), str(r.get("subject")), str(r.get("scope")), _target(r)) for r in records
    ]
    print_table(("ID", "SUBJECT", "SCOPE", "ON"), rows)


@click.command()
@click.argument("grant_id")
@remote_option
def revoke(grant_id: str, remote: str | None) -> None:
    """Revoke a grant by its ID (see racetrack grants) (staff)."""
    Lifecycle.connect(remote).delete(f"/grants/{segment(grant_id)}")
    click.echo(f"grant {grant_id} revoked", err=True)


# --- audit ----------------------------------------------------------------------------------


@click.command()
@click.option("--job", help="Only events of this job.")
@click.option("--version", help="Only events of this version of the job.")
@click.option("--mine", is_flag=True, help="Only events related to you.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@remote_option
def audit(
    job: str | None,
    version: str | None,
    mine: bool,
    limit: int,
    as_json: bool,
    remote: str | None,
) -> None:
    """Show the audit log, newest first: who deployed, deleted, granted, activated what."""
    params: dict[str, Any] = {"limit": limit}
    if job:
        params["job_name"] = job
    if version:
        params["job_version"] = version
    if mine:
        params["related_to_me"] = "true"
    answer = Lifecycle.connect(remote).get("/audit/activity", **params)
    events = answer.get("events", []) if isinstance(answer, dict) else []
    if as_json:
        print_json(events)
        return
    rows = [(when(e.get("time")), str(e.get("kind")), str(e.get("explanation"))) for e in events]
    print_table(("TIME (UTC)", "EVENT", "WHAT"), rows)


#: Every command of this module, for the top-level group.


COMMANDS = (grant, grants, revoke, audit)
