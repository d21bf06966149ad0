"""Deployments: from a request to deploy to a job version serving behind Pub.

One concept per module, each importing only those above it:

- ``request``: ``DeployRequest`` and its parsing from ``POST /deploy``'s body;
- ``environment``: what a job runs with (its variables, its sealed secrets, the ``JobSpec``
  a driver gets), for a deployment and for a restart alike;
- ``records``: the deployment row and its build log, and the job record Pub reads;
- ``phases``: the phases of one deployment, in their fixed order, and its failure;
- ``pipeline``: ``Pipeline``, the worker pool that admits and runs deployments and knows
  which replicas they have in flight.

Secrets (git credentials, secret variables) live in memory for the run; runtime secrets are
kept sealed for restarts; nothing secret reaches the build log, an error or the database in
plain text.
"""

from racetrack_core.lifecycle.deployments.pipeline import Pipeline
from racetrack_core.lifecycle.deployments.request import DeployRequest

__all__ = ["DeployRequest", "Pipeline"]
