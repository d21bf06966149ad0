"""Test support for Racetrack and for plugin authors.

- :mod:`racetrack_core.testing.plugin`: the pytest plugin (fixtures named ``racetrack_*``),
  loaded through the ``pytest11`` entry point; the only module here that imports pytest.
- :mod:`racetrack_core.testing.gitserver`: :class:`GitServer`, a real git smart-HTTP server on
  127.0.0.1 (git's own http-backend), optionally behind HTTP Basic auth.
- :mod:`racetrack_core.testing.server`: :class:`RacetrackServer`, a real ``racetrack up`` in a
  child process on free ports, driven over HTTP as a client would.

Importing this package imports none of them: import the module you need.
"""
