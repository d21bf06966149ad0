"""Racetrack's built-in plugins: ordinary plugins, declared through the same entry points."""
