"""``racetrack validate``: check a job's manifest against the schema that the plugins compose."""

from __future__ import annotations

from pathlib import Path

import click

from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import error, print_json, warn


@click.command()
@click.argument(
    "directory",
    metavar="[DIR]",
    required=False,
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "-e",
    "--extra-var",
    "extra_vars",
    multiple=True,
    metavar="KEY.SUB=VALUE",
    help="Override a manifest field after merging 'extends' (repeatable), like -e version=1.2.3.",
)
@click.option(
    "--schema",
    "show_schema",
    is_flag=True,
    help="Print the JSON schema of manifests, as composed by the installed plugins, instead.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="First rewrite the manifest file in place in today's spellings (lang: to jobtype:, "
    "python: to jobtype_extra: ...), keeping its comments and order, and say what changed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the problems) as JSON.")
@click.pass_context
def validate(
    ctx: click.Context,
    directory: Path | None,
    extra_vars: tuple[str, ...],
    show_schema: bool,
    fix: bool,
    as_json: bool,
) -> None:
    """Check the manifest of a job.

    The manifest is DIR/job.yaml (or the older DIR/fatman.yaml); DIR defaults to the current
    directory, and may also be the manifest file itself.

    A valid manifest is printed merged (with 'extends', -e overrides and defaults applied) as
    YAML; an invalid one gives each problem on its own line on stderr, and exit code 1.
    Job types and extra manifest fields come from the plugins of this Python environment.
    Older spellings of the original Racetrack are read with a warning each; --fix rewrites
    them in the file (running it again changes nothing).
    """
    manager = local_plugins(ctx).manager
    if show_schema:
        if directory is not None or extra_vars or fix:
            raise click.UsageError(
                "--schema prints the schema of all manifests; drop DIR, -e and --fix"
            )
        from racetrack_core.schema import composed_schema

        print_json(composed_schema(manager))
        return

    from racetrack_core.errors import ManifestError
    from racetrack_core.manifest import dump_yaml, load_manifest
    from racetrack_core.schema import validate_manifest

    path = directory or Path.cwd()
    fixed: list[str] = []
    try:
        if fix:
            fixed = _fix(path)
        manifest = load_manifest(path, extra_vars=extra_vars)
        result = validate_manifest(manifest, manager)
    except ManifestError as exc:
        # Problems found while loading name their file themselves; validation's do not.
        prefix = f"{exc.source}: " if exc.source else ""
        if as_json:
            source = exc.source or str(path)
            print_json({"valid": False, "source": source, "problems": exc.problems})
            count = len(exc.problems)
            error(f"{source} is not valid ({count} problem{'s' if count != 1 else ''})")
        else:
            for problem in exc.problems:
                error(f"{prefix}{problem}")
        ctx.exit(1)

    if as_json:
        print_json(
            {
                "valid": True,
                "source": manifest.source,
                "job_type": result.job_type.ref,
                "warnings": result.warnings,
                "fixed": fixed,
                "manifest": result.data,
            }
        )
        return
    for message in result.warnings:
        warn(message)
    click.echo(dump_yaml(result.data), nl=False)


def _fix(path: Path) -> list[str]:
    """Rewrite the manifest at ``path`` (a file or a job directory); report each change."""
    from racetrack_core.manifest import find_manifest
    from racetrack_core.manifest_fix import fix_file

    target = find_manifest(path) if path.is_dir() else path
    changes = fix_file(target).changes
    for change in changes:
        click.echo(f"fixed {target.name}: {change}", err=True)
    if not changes:
        click.echo(f"{target.name}: nothing to fix, it uses today's spellings", err=True)
    return changes
