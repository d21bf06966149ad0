"""The ``racetrack`` command line. It talks HTTP to servers and imports no server module."""
