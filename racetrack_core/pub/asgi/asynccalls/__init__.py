"""Asynchronous job calls: submit now, collect the job's answer later, across restarts.

:mod:`.gateway` answers the routes and keeps stored tasks running, :mod:`.runner` runs one task
against its job, :mod:`.store` talks to Lifecycle, which stores the tasks.
"""

from racetrack_core.pub.asgi.asynccalls.routes import AsyncCalls

__all__ = ["AsyncCalls"]
