"""``racetrack login`` and ``racetrack logout``: the token saved for each remote."""

from __future__ import annotations

import sys

import click

from racetrack_cli.client import ClientError, Lifecycle, remote_option
from racetrack_cli.config import ClientConfig


@click.command()
@click.argument("token", required=False)
@click.option("-u", "--username", help="Log in with a username and password instead of a token.")
@remote_option
def login(token: str | None, username: str | None, remote: str | None) -> None:
    """Log in to the remote and save the token for later commands.

    Give the TOKEN from the Dashboard's Profile page, or --username: the password is then
    asked for without echo on a terminal, or read as one line from standard input
    (echo "$PASSWORD" | racetrack login --username me). With --remote, that remote also
    becomes the current one unless you are logged in to the current one.
    """
    if (token is None) == (username is None):
        raise click.UsageError("give either a TOKEN or --username USERNAME")
    config = ClientConfig.load()
    lifecycle = Lifecycle.connect(remote, config)
    if username is not None:
        password = read_password()
        try:
            answer = lifecycle.request(
                "POST", "/users/login", json_body={"username": username, "password": password}
            )
        except ClientError as exc:
            if exc.status == 401:
                raise ClientError(f"{exc.detail} ({lifecycle.url})", status=401) from None
            raise
    else:
        assert token is not None
        try:
            answer = lifecycle.request("GET", "/users/validate_user_auth", token=token)
        except ClientError as exc:
            if exc.status != 401:
                raise
            raise ClientError(
                f"invalid auth token for {lifecycle.url}: copy it again from the Dashboard's "
                "Profile page, or run racetrack login --username <you>"
            ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
        raise ClientError(f"{lifecycle.url} answered the login without a token")
    config.user_auths[lifecycle.url] = answer["token"]
    current = config.resolve()
    switch = remote is not None and current != lifecycle.url and config.token(current) is None
    if switch:
        # The Profile page's command names its remote; with no login for the current
        # remote, that one becomes current, so that `racetrack deploy` works next.
        config.lifecycle_url = lifecycle.url
    config.save()
    staff = " (staff)" if answer.get("is_staff") else ""
    click.echo(f"logged in to {lifecycle.url} as {answer.get('username')}{staff}", err=True)
    if switch:
        click.echo(f"current remote is now {lifecycle.url}", err=True)
    elif remote is not None and current != lifecycle.url:
        click.echo(
            f"the current remote stays {current}; to use this one by default: "
            f"racetrack set remote {lifecycle.url}",
            err=True,
        )


def read_password() -> str:
    """The password: prompted for without echo on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, err=True)
        return password
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on standard input: pipe it in, or run on a terminal")
    return password


@click.command()
@remote_option
def logout(remote: str | None) -> None:
    """Forget the token saved for the remote."""
    config = ClientConfig.load()
    url = config.resolve(remote)
    if config.user_auths.pop(url, None) is None:
        click.echo(f"not logged in to {url}: nothing to do", err=True)
        return
    config.save()
    click.echo(f"logged out of {url}", err=True)
