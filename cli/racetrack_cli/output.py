"""How the CLI prints: data on stdout (tables, JSON, YAML), diagnostics on stderr."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import click


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under headers on stdout, each column as wide as its widest cell."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    for cells in (headers, *rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        click.echo(line.rstrip())


def cell(values: Sequence[str] | str | None) -> str:
    """One table cell: a list joined with commas, and '-' for nothing."""
    if values is None:
        return "-"
    if isinstance(values, str):
        return values or "-"
    return ", ".join(values) or "-"


def warn(message: str) -> None:
    """Print a warning on stderr."""
    click.echo(f"Warning: {message}", err=True)


def error(message: str) -> None:
    """Print an error on stderr, as one line."""
    click.echo(f"Error: {message}", err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def when(value: Any) -> str:
    """A unix time as a UTC date and time, or '-'."""
    if not isinstance(value, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(value))
