"""The Dashboard (port 7103, under ``/dashboard``): Racetrack in the browser.

Accounts, jobs, deployments and administration as server-rendered pages over the Lifecycle
API; see ``app.create_app``.
"""

from racetrack_core.dashboard.app import create_app

__all__ = ["create_app"]
