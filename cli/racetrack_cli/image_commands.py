"""``racetrack images``: container images Racetrack builds on this machine.

The work is done by :mod:`racetrack_core.baseimages`, imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import cell, print_json, print_table


@click.group()
def images() -> None:
    """Container images that Racetrack builds on this machine."""


@images.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "--list", "list_only", is_flag=True, help="Show the images and their state; build nothing."
)
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
@click.option("--force", is_flag=True, help="Rebuild the roots and re-import, cache or not.")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of cached Debian roots "
    "[setting base_images_cache; default /var/cache/racetrack/base-images].",
)
@click.option(
    "--mirror",
    metavar="URL",
    help="Debian mirror [setting base_images_mirror; default: the one in this host's apt sources].",
)
@click.option(
    "--apt-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/apt"),
    show_default=True,
    help="Folder whose sources.list and sources.list.d/ name the mirror, when none is given.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of the site's CAs to add to each image's trust store "
    "[setting base_images_ca_bundle].",
)
@click.option(
    "--docker",
    "docker_cli",
    metavar="PATH",
    help="docker command [setting base_images_docker_cli; default docker].",
)
@click.pass_context
def bootstrap(
    ctx: click.Context,
    names: tuple[str, ...],
    list_only: bool,
    as_json: bool,
    force: bool,
    cache: Path | None,
    mirror: str | None,
    apt_dir: Path,
    ca_bundle: Path | None,
    docker_cli: str | None,
) -> None:
    """Build the base images that job types need from Debian packages, without a registry.

    Each installed job type declares the images its Dockerfile starts FROM and their Debian
    packages; this builds each one with debootstrap (as root), removes apt lists and
    documentation, adds the CA bundle if one is set, and imports it into the Docker engine
    under that name. Roots are cached by a hash of suite, packages, mirror and CA bundle: a
    second run does nothing, or only imports. NAME limits the run to those images.
    """
    if as_json and not list_only:
        raise click.UsageError("--json goes with --list")
    from racetrack_core.baseimages import declared_base_images
    from racetrack_core.baseimages.bootstrap import options_from_settings, plan, run
    from racetrack_core.baseimages.engine import DockerEngine
    from racetrack_core.settings import Settings

    options = options_from_settings(
        Settings.load(),
        cache=cache,
        mirror=mirror,
        apt_dir=apt_dir,
        ca_bundle=ca_bundle,
        docker_cli=docker_cli,
        force=force,
    )
    specs = declared_base_images(local_plugins(ctx).manager).select(names)
    if not specs:
        click.echo("No installed job type declares a base image.", err=True)
        return
    if list_only:
        engine = DockerEngine(options.docker_cli)
        engine.check()
        planned = plan(specs, options, engine)
        if as_json:
            print_json([image.as_dict() for image in planned])
            return
        rows = [
            [p.spec.name, p.spec.suite, cell(list(p.spec.packages)), p.spec.plugin, p.state]
            for p in planned
        ]
        print_table(["IMAGE", "SUITE", "PACKAGES", "PLUGIN", "STATE"], rows)
        return
    run(specs, options, lambda line: click.echo(line, err=True))
