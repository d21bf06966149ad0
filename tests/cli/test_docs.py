"""docs/cli.md is generated from the commands; this fails when it falls behind them."""

from __future__ import annotations

from pathlib import Path

from racetrack_cli.docs import render
from racetrack_cli.main import cli

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_up_to_date() -> None:
    assert CLI_MD.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run python -m racetrack_cli.docs > docs/cli.md"
    )


def test_every_built_in_command_is_documented() -> None:
    text = render()
    for name, command in cli.commands.items():
        assert f"`racetrack {name}`" in text
        for sub in getattr(command, "commands", {}):
            assert f"`racetrack {name} {sub}`" in text
