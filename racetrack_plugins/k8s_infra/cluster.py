"""The Kubernetes API as the target uses it: a lightkube client and a few verbs over it.

Objects go in and come out as plain dictionaries (``objects`` renders them). Writing an object
is *create, or replace what is there*: a full ``PUT`` of the rendered object, carrying the
stored ``resourceVersion`` so that a concurrent change is refused (409) instead of lost, and
retried once on a fresh read. Server-side apply would do the same in one call, but the
emulator the tests run against cannot create objects by apply, and a replace says exactly
what the object is.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import lightkube
from lightkube import codecs
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, PodLog, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from racetrack_core.infrastructure import DeployError
from racetrack_plugins.k8s_infra.settings import KubernetesSettings

FIELD_MANAGER = "racetrack"
KINDS: dict[str, Any] = {
    "Deployment": Deployment,
    "Service": Service,
    "Secret": Secret,
    "NetworkPolicy": NetworkPolicy,
    "Pod": Pod,
}


def kube_config(settings: KubernetesSettings) -> KubeConfig:
    """The configuration ``settings.auth`` asks for; DeployError saying what is missing."""
    account = Path(settings.service_account_dir)
    in_cluster = settings.auth == "in-cluster" or (
        settings.auth == "auto" and (account / "token").is_file()
    )
    try:
        if in_cluster:
            return KubeConfig.from_service_account(account)
        path = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        return KubeConfig.from_file(Path(path).expanduser())
    except (ConfigError, KeyError, OSError) as error:
        how = (
            f"the service account in {account} (auth: in-cluster; is Lifecycle in a pod?)"
            if in_cluster
            else "a kubeconfig file (set targets.kubernetes.kubeconfig or KUBECONFIG)"
        )
        raise DeployError(f"the kubernetes target cannot read {how}: {error}") from error


def connect(settings: KubernetesSettings) -> lightkube.Client:
    """A client of the cluster that ``settings`` names, in the jobs' namespace."""
    config = kube_config(settings)
    try:
        single = config.get(context_name=settings.context)
    except ConfigError as error:
        raise DeployError(f"targets.kubernetes.context: {error}") from error
    return lightkube.Client(
        single,
        namespace=settings.namespace,
        field_manager=FIELD_MANAGER,
        trust_env=False,
        timeout=httpx.Timeout(30.0),
    )


class Cluster:
    """The verbs the driver needs, on dictionaries, with API failures as DeployError.

    An error answer is read from its status code and its ``Status`` body whatever its
    ``Content-Type`` says (lightkube turns only an exact ``application/json`` into its
    ``ApiError``; a proxy or the emulator may add a charset).
    """

    def __init__(self, client: lightkube.Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None when there is none."""
        try:
            return _as_dict(self.client.get(KINDS[kind], name, namespace=self.namespace))
        except httpx.HTTPError as error:
            if status_code(error) == 404:
                return None
            raise failure(f"reading {kind} {name}", error) from error

    def write(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``obj``, or replace the stored one with it (see the module's docstring)."""
        kind, name = str(obj["kind"]), str(obj["metadata"]["name"])
        for attempt in (1, 2):
            stored = self.get(kind, name)
            try:
                if stored is None:
                    return _as_dict(self.client.create(codecs.from_dict(dict(obj))))
                replacing = _carry_over(obj, stored)
                return _as_dict(self.client.replace(codecs.from_dict(replacing)))
            except httpx.HTTPError as error:
                if status_code(error) == 409 and attempt == 1:
                    continue  # changed (or created) meanwhile: read it again
                raise failure(f"writing {kind} {name}", error) from error
        raise AssertionError("unreachable")

    def delete(self, kind: str, name: str) -> bool:
        """Delete an object; False when it was not there."""
        try:
            self.client.delete(KINDS[kind], name, namespace=self.namespace)
        except httpx.HTTPError as error:
            if status_code(error) == 404:
                return False
            raise failure(f"deleting {kind} {name}", error) from error
        return True

    def list(self, kind: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Objects of ``kind`` carrying every label in ``labels`` (checked again here, so a
        server that ignored the selector cannot hand over another owner's objects)."""
        try:
            found = self.client.list(KINDS[kind], namespace=self.namespace, labels=dict(labels))
            items = [_as_dict(item) for item in found]
        except httpx.HTTPError as error:
            raise failure(f"listing {kind}s", error) from error
        return [item for item in items if _has_labels(item, labels)]

    def logs(self, pod: str, container: str, tail: int) -> str:
        """A pod's output (the last ``tail`` lines; 0: all); empty before its container ran."""
        try:
            lines = self.client.log(
                pod, namespace=self.namespace, container=container, tail_lines=tail or None
            )
            return "".join(lines)
        except httpx.HTTPError as error:
            if status_code(error) in (400, 404):  # not started yet, or gone
                return ""
            raise failure(f"reading the logs of pod {pod}", error) from error

    def stream_logs(self, pod: str, container: str, tail: int) -> httpx.Response:
        """An open response following a pod's output; close it to stop following.

        lightkube's ``log(follow=True)`` yields lines but keeps its response to itself, and a
        follower must be able to close the stream from another thread; so the request is
        built with lightkube's own request builder and sent here.
        """
        generic = self.client._client  # see the docstring
        request = generic.prepare_request(
            "get",
            PodLog,
            name=pod,
            namespace=self.namespace,
            params={"follow": True, "tailLines": tail, "container": container},
        )
        adapted = generic.build_adapter_request(request)
        # A followed log may stay silent for long: no read timeout, as kubectl does.
        adapted.extensions["timeout"] = httpx.Timeout(30.0, read=None).as_dict()
        try:
            response: httpx.Response = generic.send(adapted, stream=True)  # type: ignore[no-untyped-call]
        except httpx.HTTPError as error:
            raise failure(f"following the logs of pod {pod}", error) from error
        if response.is_error:
            response.read()
            response.close()
            raise DeployError(f"following the logs of pod {pod}: HTTP {response.status_code}")
        return response

    def close(self) -> None:
        self.client.close()


def interrupt(response: httpx.Response) -> None:
    """Close a followed log from another thread. Closing a socket does not wake a thread
    blocked reading it (nor tell the server), so the socket is shut down first."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(httpx.HTTPError, OSError):
        response.close()


def status_code(error: httpx.HTTPError) -> int | None:
    """The HTTP status of an error answer (None when no answer came)."""
    if isinstance(error, httpx.HTTPStatusError):
        return int(error.response.status_code)
    return None


def failure(what: str, error: httpx.HTTPError) -> DeployError:
    """A DeployError saying what the API answered (its ``Status`` message), or that it did not."""
    if not isinstance(error, httpx.HTTPStatusError):
        return DeployError(f"the Kubernetes API did not answer {what}: {type(error).__name__}")
    try:
        body = error.response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    said = f"{error.response.status_code} {reason or error.response.reason_phrase}"
    return DeployError(
        f"the Kubernetes API refused {what}: {said}" + (f": {message}" if message else "")
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as the plain dictionary the API sent."""
    return dict(obj.to_dict())


def _carry_over(obj: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with what a replace must keep of the stored object: its ``resourceVersion``
    (optimistic concurrency) and, for a Service, the cluster IPs it was given."""
    replacing: dict[str, Any] = {**obj, "metadata": dict(obj["metadata"])}
    version = (stored.get("metadata") or {}).get("resourceVersion")
    if version:
        replacing["metadata"]["resourceVersion"] = version
    if obj["kind"] == "Service":
        spec = dict(replacing["spec"])
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            kept = (stored.get("spec") or {}).get(key)
            if kept and key not in spec:
                spec[key] = kept
        replacing["spec"] = spec
    return replacing


def _has_labels(item: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    found = (item.get("metadata") or {}).get("labels") or {}
    return all(found.get(key) == value for key, value in labels.items())
