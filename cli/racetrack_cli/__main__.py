"""``python -m racetrack_cli``: the ``racetrack`` command, run by a given interpreter."""

from racetrack_cli.main import main

if __name__ == "__main__":
    main()
