"""Fixtures for the Kubernetes target: kmock's API emulator on 127.0.0.1 and a kubeconfig
naming it, so that the driver's real lightkube client reaches it as it would a cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.infrastructure import JobSpec, TargetContext
from racetrack_core.registry import JobType
from racetrack_plugins.k8s_infra import KubernetesDriver
from racetrack_plugins.python3 import RECIPES

from .emulator import RunningEmulator

NAMESPACE = "jobs"
TOKEN = "emulator-token-1"


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with RunningEmulator() as running:
        yield running


def write_kubeconfig(path: Path, server: str, **cluster: Any) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulated", "cluster": {"server": server, **cluster}}],
                "users": [{"name": "racetrack", "user": {"token": TOKEN}}],
                "contexts": [
                    {
                        "name": "emulated",
                        "context": {"cluster": "emulated", "user": "racetrack"},
                    }
                ],
                "current-context": "emulated",
            }
        )
    )
    return path


@pytest.fixture
def driver(emulator: RunningEmulator, tmp_path: Path) -> Iterator[KubernetesDriver]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", emulator.url)
    settings = {
        "auth": "kubeconfig",
        "kubeconfig": str(kubeconfig),
        "namespace": NAMESPACE,
        "image_pull_secret": "registry-login",
        "build": {"repository": "registry.test/racetrack-job"},
    }
    made = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    yield made
    made.close()


def job_spec(tmp_path: Path, **changes: Any) -> JobSpec:
    fields: dict[str, Any] = {
        "name": "primer",
        "version": "1.0.0",
        "manifest": {"replicas": 2, "resources": {"memory_max": "1Gi"}},
        "job_type": JobType("python3", "1.0.0", recipes=RECIPES),
        "workspace": tmp_path,
        "env": {"JOB_NAME": "primer", "AUTH_TOKEN": "family-token-1", "API_KEY": "s3cret"},
        "deployment_id": "d1" + "0" * 30,
        "deployment_timestamp": 100,
        "state_dir": tmp_path / "state",
        **changes,
    }
    return JobSpec(**fields)
