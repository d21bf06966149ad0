"""The Lifecycle API: jobs, deployments, users, tokens and plugins over HTTP."""

from racetrack_core.lifecycle.app import create_app

__all__ = ["create_app"]
