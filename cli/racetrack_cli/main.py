"""Entry point of the ``racetrack`` command (placeholder until the CLI lands)."""


def main() -> None:
    raise SystemExit(0)
