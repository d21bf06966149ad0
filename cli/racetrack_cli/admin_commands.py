"""Accounts and their administration: ``register``, ``token``, ``user`` and ``esc``.

Everyone may register and manage their own tokens; the ``user`` and ``esc`` commands need a
staff account (or a grant of ``call_admin_api``). A token is printed once, when it is
created, on stdout alone, so that it can be piped into a secret store.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from racetrack_cli.client import ClientError, Lifecycle, remote_option, segment
from racetrack_cli.output import cell, json_option, print_json, print_table, when

days_option = click.option(
    "--expires-in-days",
    type=click.IntRange(1, 3650),
    help="Make the token stop working after this many days [default: never].",
)


def print_tokens(tokens: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(tokens)
        return
    rows = [
        (
            str(t.get("id")),
            str(t.get("hint")),
            when(t.get("create_time")),
            when(t.get("expiry_time")),
            when(t.get("last_use_time")),
            "revoked" if t.get("revoked") else ("active" if t.get("active") else "expired"),
        )
        for t in tokens
    ]
    print_table(("ID", "ENDS WITH", "CREATED", "EXPIRES", "LAST USED", "STATE"), rows)


def print_new_token(answer: Any) -> None:
    if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
        raise ClientError("the server answered without a token")
    click.echo(answer["token"])
    expiry = when(answer.get("expiry_time"))
    click.echo(
        f"token {answer.get('id')} created (expires: {'never' if expiry == '-' else expiry}); "
        "it is shown only this once",
        err=True,
    )


# --- register -------------------------------------------------------------------------------


@click.command()
@click.option("-u", "--username", required=True, help="Your e-mail address.")
@remote_option
def register(username: str, remote: str | None) -> None:
    """Register an account on the remote; a staff member must activate it before you log in.

    The password is asked for twice without echo on a terminal, or read as one line from
    standard input. It needs at least 8 characters, not all digits, and must not be a common
    password.
    """
    if sys.stdin.isatty():
        password: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input: pipe it in, or use a terminal")
    lifecycle = Lifecycle.connect(remote)
    lifecycle.post("/users/register", {"username": username, "password": password})
    click.echo(
        f"registered {username} at {lifecycle.url}; a staff member must activate the account "
        f"before you can log in (racetrack login --username {username}{lifecycle.remote_hint})",
        err=True,
    )


# --- token ----------------------------------------------------------------------------------


@click.group()
def token() -> None:
    """List, create and revoke your own auth tokens."""


@token.command("list")
@json_option
@remote_option
def list_tokens(as_json: bool, remote: str | None) -> None:
    """List your tokens (their last characters only), newest first."""
    print_tokens(Lifecycle.connect(remote).get("/tokens"), as_json)


@token.command("create")
@days_option
@remote_option
def create_token(expires_in_days: int | None, remote: str | None) -> None:
    """Create a token and print it (shown only this once)."""
    answer = Lifecycle.connect(remote).post("/tokens", {"expires_in_days": expires_in_days})
    print_new_token(answer)


@token.command("revoke")
@click.argument("token_id")
@remote_option
def revoke_token(token_id: str, remote: str | None) -> None:
    """Revoke one of your tokens by its ID: it stops working at once."""
    Lifecycle.connect(remote).delete(f"/tokens/{segment(token_id)}")
    click.echo(f"token {token_id} revoked", err=True)


@token.command("regenerate")
@remote_option
def regenerate_token(remote: str | None) -> None:
    """Replace the token this client uses with a new one, and save the new one."""
    from racetrack_cli.config import ClientConfig

    config = ClientConfig.load()
    lifecycle = Lifecycle.connect(remote, config)
    lifecycle.require_token()
    answer = lifecycle.post("/auth/token/user/regenerate")
    if not isinstance(answer, dict) or not isinstance(answer.get("new_token"), str):
        raise ClientError("the server answered without a new token")
    config.user_auths[lifecycle.url] = answer["new_token"]
    config.save()
    click.echo(f"the token for {lifecycle.url} was replaced; the old one is revoked", err=True)


# --- user -----------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """List, activate and deactivate users (staff)."""


@user.command("list")
@json_option
@remote_option
def list_users(as_json: bool, remote: str | None) -> None:
    """List the users of the remote."""
    users = Lifecycle.connect(remote).get("/users")
    if as_json:
        print_json(users)
        return
    rows = [
        (
            str(u.get("username")),
            "yes" if u.get("is_active") else "no",
            "yes" if u.get("is_staff") else "no",
            when(u.get("create_time")),
            when(u.get("last_login_time")),
        )
        for u in users
    ]
    print_table(("USERNAME", "ACTIVE", "STAFF", "REGISTERED", "LAST LOGIN"), rows)


def _set_user(remote: str | None, username: str, action: str, done: str) -> None:
    Lifecycle.connect(remote).post(f"/users/{segment(username)}/{action}")
    click.echo(f"user {username} {done}", err=True)


@user.command()
@click.argument("username")
@remote_option
def activate(username: str, remote: str | None) -> None:
    """Activate a registered user, who may then log in."""
    _set_user(remote, username, "activate", "activated")


@user.command()
@click.argument("username")
@remote_option
def deactivate(username: str, remote: str | None) -> None:
    """Deactivate a user: logging in and all of their tokens stop working."""
    _set_user(remote, username, "deactivate", "deactivated")


@user.command()
@click.argument("username")
@click.option("--off", is_flag=True, help="Take staff away instead.")
@remote_option
def staff(username: str, off: bool, remote: str | None) -> None:
    """Make a user staff (or, with --off, not)."""
    Lifecycle.connect(remote).post(f"/users/{segment(username)}/staff", {"is_staff": not off})
    click.echo(f"user {username} is {'no longer ' if off else ''}staff", err=True)


# --- esc ------------------------------------------------------------------------------------


@click.group()
def esc() -> None:
    """External service consumers: programs that call jobs with tokens of their own (staff)."""


@esc.command("list")
@json_option
@remote_option
def list_escs(as_json: bool, remote: str | None) -> None:
    """List the external service consumers."""
    escs = Lifecycle.connect(remote).get("/escs")
    if as_json:
        print_json(escs)
        return
    rows = [
        (
            str(e.get("name")),
            str(e.get("id")),
            when(e.get("create_time")),
            cell(e.get("created_by")),
        )
        for e in escs
    ]
    print_table(("NAME", "ID", "CREATED", "BY"), rows)


@esc.command("create")
@click.argument("name")
@remote_option
def create_esc(name: str, remote: str | None) -> None:
    """Create an ESC; give it a token with racetrack esc token NAME, and grants."""
    answer = Lifecycle.connect(remote).post("/escs", {"name": name})
    click.echo(answer.get("id") if isinstance(answer, dict) else answer)
    click.echo(
        f"ESC {name} created; next: racetrack esc token {name}, and racetrack grant esc {name} "
        "call_job --family JOB",
        err=True,
    )


@esc.command("delete")
@click.argument("esc_ref", metavar="ESC")
@remote_option
def delete_esc(esc_ref: str, remote: str | None) -> None:
    """Delete an ESC (by name or ID) with its grants; its tokens stop working."""
    Lifecycle.connect(remote).delete(f"/escs/{segment(esc_ref)}")
    click.echo(f"ESC {esc_ref} deleted", err=True)


@esc.command("token")
@click.argument("esc_ref", metavar="ESC")
@days_option
@remote_option
def esc_token(esc_ref: str, expires_in_days: int | None, remote: str | None) -> None:
    """Create a token for an ESC (by name or ID) and print it (shown only this once)."""
    answer = Lifecycle.connect(remote).post(
        f"/escs/{segment(esc_ref)}/auth_token", {"expires_in_days": expires_in_days}
    )
    print_new_token(answer)


@esc.command("tokens")
@click.argument("esc_ref", metavar="ESC")
@json_option
@remote_option
def esc_tokens(esc_ref: str, as_json: bool, remote: str | None) -> None:
    """List an ESC's tokens (their last characters only)."""
    data = Lifecycle.connect(remote).get(f"/escs/{segment(esc_ref)}/auth_data")
    print_tokens(data.get("tokens", []) if isinstance(data, dict) else [], as_json)


@esc.command("revoke-token")
@click.argument("esc_ref", metavar="ESC")
@click.argument("token_id")
@remote_option
def esc_revoke_token(esc_ref: str, token_id: str, remote: str | None) -> None:
    """Revoke one token of an ESC."""
    Lifecycle.connect(remote).delete(f"/escs/{segment(esc_ref)}/auth_token/{segment(token_id)}")
    click.echo(f"token {token_id} of ESC {esc_ref} revoked", err=True)


COMMANDS = (register, token, user, esc)
