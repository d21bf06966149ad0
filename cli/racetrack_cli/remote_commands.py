"""``racetrack set ...`` and ``racetrack get ...``: the client's configuration.

Values go to stdout (so that ``$(racetrack get auth-token)`` works); confirmations go to stderr.
"""

from __future__ import annotations

import click

from racetrack_cli.client import ClientError, Lifecycle, remote_option
from racetrack_cli.config import ClientConfig, mask, resolve_url
from racetrack_cli.yaml_subset import dump


@click.group("set")
def set_group() -> None:
    """Set the current remote, an alias, or git credentials."""


@set_group.command("remote")
@click.argument("remote", metavar="URL|ALIAS")
def set_remote(remote: str) -> None:
    """Make URL (or the URL of ALIAS) the current remote.

    Later commands talk to it unless they are given --remote. A URL without a scheme gets
    https://, one without a path gets /lifecycle: http://127.0.0.1:7102 means
    http://127.0.0.1:7102/lifecycle.
    """
    config = ClientConfig.load()
    config.lifecycle_url = remote
    config.save()
    click.echo(f"current remote: {config.resolve()}", err=True)


@set_group.command("alias")
@click.argument("alias")
@click.argument("url")
def set_alias(alias: str, url: str) -> None:
    """Name a Lifecycle URL ALIAS, for --remote ALIAS and set remote ALIAS."""
    if "/" in alias or ":" in alias:
        raise click.BadParameter(
            f"'{alias}' looks like a URL; an alias is a short name such as dev or prod",
            param_hint="'ALIAS'",
        )
    config = ClientConfig.load()
    config.lifecycle_url_aliases[alias] = url
    config.save()
    click.echo(f"alias {alias}: {resolve_url(url, {})}", err=True)


@set_group.command("credentials")
@click.argument("repo_url")
@click.argument("username")
@click.argument("token")
def set_credentials(repo_url: str, username: str, token: str) -> None:
    """Save a read-only TOKEN for private git repositories under REPO_URL.

    REPO_URL is a repository (https://github.com/org/job) or a whole host
    (https://github.com). They are sent with a deployment whose manifest's git.remote they
    match (the repository, a parent path, then the host), when the server fetches from git.
    """
    config = ClientConfig.load()
    config.git_credentials[repo_url.rstrip("/")] = {"username": username, "password": token}
    config.save()
    click.echo(f"git credentials saved for {repo_url.rstrip('/')}", err=True)


@click.group("get")
def get_group() -> None:
    """Show the current remote, Pub's address, the configuration or the auth token."""


@get_group.command("remote")
def get_remote() -> None:
    """Print the Lifecycle URL of the current remote."""
    config = ClientConfig.load()
    click.echo(config.resolve())


@get_group.command("pub")
@remote_option
def get_pub(remote: str | None) -> None:
    """Print the address of the Pub gateway that serves the remote's jobs."""
    info = Lifecycle.connect(remote).get("/info")
    pub = info.get("external_pub_url") if isinstance(info, dict) else None
    if not pub:
        raise ClientError("the remote did not say where its Pub is (no external_pub_url)")
    click.echo(pub)


@get_group.command("config")
def get_config() -> None:
    """Print the configuration, with tokens and passwords masked."""
    config = ClientConfig.load()
    data = config.as_dict()
    data["user_auths"] = {url: mask(token) for url, token in config.user_auths.items()}
    data["git_credentials"] = {
        url: {**creds, "password": mask(creds.get("password", ""))}
        for url, creds in config.git_credentials.items()
    }
    click.echo(f"# {config.path}", err=True)
    click.echo(dump(data), nl=False)


@get_group.command("auth-token")
@remote_option
def get_auth_token(remote: str | None) -> None:
    """Print the auth token for the remote, as the X-Racetrack-Auth header takes it."""
    click.echo(Lifecycle.connect(remote).require_token())
