"""A job version's state, read from its Deployment's conditions and its pods.

What the cluster reports, as Racetrack's ``ReplicaState``:

- a pod of the current deployment that cannot get its image (``ErrImagePull``,
  ``ImagePullBackOff``, ``InvalidImageName``) or cannot start its container (a missing Secret:
  ``CreateContainerConfigError``) is an **error** at once, with the kubelet's message;
- a container that keeps crashing (``CrashLoopBackOff``) is **starting** until it restarted
  ``crash_limit`` times, then an **error**, with its exit code and reason;
- a Deployment whose rollout passed its progress deadline (condition ``Progressing`` False,
  ``ProgressDeadlineExceeded``) or whose pods cannot be created (``ReplicaFailure``, such as an
  exceeded quota) is an **error** with the condition's message;
- otherwise **running** once a pod is ready, **starting** before.

Each pod of the current deployment is also reported as an instance of the replica, with its own
state, and the pods that serve calls (ready, not terminating, with an address) become the
replica's ``endpoints`` when there are two or more: Lifecycle records them and Pub sends each
call to the next one in turn (``racetrack_core.pub.instances``), instead of through the
Service, where kube-proxy balances connections, not calls, and Pub's kept-alive connections
would stay on the pods they first reached. With one pod or none, the Service is the address.

Everything works on plain dictionaries (``to_dict()`` of lightkube's objects), so it reads what
any API server, or the emulator of the tests, returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from racetrack_core.infrastructure import InstanceState, Replica, ReplicaState, ReplicaStatus
from racetrack_plugins.k8s_infra import names

#: Waiting reasons that will not go away by waiting.
FATAL_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}
CRASHING = {"CrashLoopBackOff", "RunContainerError"}


def replica_of(deployment: Mapping[str, Any], url: str, endpoints: tuple[str, ...] = ()) -> Replica:
    """The replica a Deployment runs now, from the annotations the target wrote on it."""
    meta = deployment.get("metadata") or {}
    notes = meta.get("annotations") or {}
    return Replica(
        id=str(notes.get(names.ANNOTATION_REPLICA, meta.get("name", ""))),
        name=str(notes.get(names.ANNOTATION_JOB, "")),
        version=str(notes.get(names.ANNOTATION_VERSION, "")),
        url=url,
        deployment_timestamp=int(notes.get(names.ANNOTATION_TIMESTAMP, 0) or 0),
        endpoints=endpoints,
    )


def current_deployment_id(deployment: Mapping[str, Any]) -> str:
    notes = (deployment.get("metadata") or {}).get("annotations") or {}
    return str(notes.get(names.ANNOTATION_DEPLOYMENT, ""))


def current_pods(
    deployment: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The pods of the Deployment's current deployment (not those of the one it replaces)."""
    wanted = names.label_value(current_deployment_id(deployment))
    return [
        pod
        for pod in pods
        if ((pod.get("metadata") or {}).get("labels") or {}).get(names.LABEL_DEPLOYMENT) == wanted
    ]


def state_of(
    deployment: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    url: str,
    crash_limit: int,
    port: int,
) -> ReplicaState:
    """The state of the replica ``deployment`` runs, judged with ``pods`` (every pod of its
    job version, which its Service selects; ``port``: the job's port in them)."""
    pods = list(pods)
    replica = replica_of(deployment, url, endpoints_of(pods, port))
    mine = current_pods(deployment, pods)
    staying = [pod for pod in _by_name(mine) if not _stopping(pod)]
    instances = tuple(instance_of(pod, url, port, crash_limit) for pod in staying)
    restarts = sum(_restarts(pod) for pod in mine)
    problems = [found for found in (pod_problem(pod, crash_limit) for pod in mine) if found]
    if problems:  # the worst one: a pod that will not run beats one that may yet
        fatal, reason = max(problems, key=lambda problem: problem[0])
        status = ReplicaStatus.ERROR if fatal else ReplicaStatus.STARTING
        return ReplicaState(replica, status, reason, restarts, instances)
    failed = deployment_failure(deployment)
    if failed is not None:
        return ReplicaState(replica, ReplicaStatus.ERROR, failed, restarts, instances)
    ready = any(_ready(pod) for pod in mine)
    status = ReplicaStatus.RUNNING if ready else ReplicaStatus.STARTING
    return ReplicaState(replica, status, None, restarts, instances)


def pod_url(pod: Mapping[str, Any], port: int) -> str | None:
    """The base URL of a pod's job (its ``status.podIP``), or None before it has an address."""
    address = str((pod.get("status") or {}).get("podIP") or "")
    if not address:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


def serving(pod: Mapping[str, Any]) -> bool:
    """Whether the Service would send calls to ``pod``: ready, and not being stopped."""
    return _ready(pod) and not _stopping(pod)


def endpoints_of(pods: Iterable[Mapping[str, Any]], port: int) -> tuple[str, ...]:
    """The addresses of the pods that serve calls now, in a stable order, when there are two
    or more (empty otherwise: one pod is reached as well through the Service)."""
    urls = sorted({url for pod in pods if serving(pod) and (url := pod_url(pod, port))})
    return tuple(urls) if len(urls) > 1 else ()


def instance_of(
    pod: Mapping[str, Any], service_url: str, port: int, crash_limit: int
) -> InstanceState:
    """One pod as an instance of the replica: its own address (the Service's before it has
    one), name, restarts and state."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    url = pod_url(pod, port) or service_url
    restarts = _restarts(pod)
    problem = pod_problem(pod, crash_limit)
    if problem is not None:
        fatal, reason = problem
        status = ReplicaStatus.ERROR if fatal else ReplicaStatus.STARTING
        return InstanceState(url, status, reason, restarts, name)
    status = ReplicaStatus.RUNNING if serving(pod) else ReplicaStatus.STARTING
    return InstanceState(url, status, None, restarts, name)


def pod_problem(pod: Mapping[str, Any], crash_limit: int) -> tuple[bool, str] | None:
    """(fatal, sentence) for a pod whose container cannot run, or None."""
    name = (pod.get("metadata") or {}).get("name", "?")
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        message = str(waiting.get("message") or "").strip()
        restarts = int(container.get("restartCount") or 0)
        if reason in FATAL_WAITING:
            return True, f"pod {name}: {reason}" + (f": {message}" if message else "")
        if reason in CRASHING:
            last = (container.get("lastState") or {}).get("terminated") or {}
            said = f"pod {name}: {reason}, restarted {restarts} times"
            if last:
                said += f" (last exit code {last.get('exitCode')}, {last.get('reason', 'Error')})"
            return restarts >= crash_limit, said
    return None


def deployment_failure(deployment: Mapping[str, Any]) -> str | None:
    """The message of a condition saying the Deployment cannot make progress, or None."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        kind, status = condition.get("type"), condition.get("status")
        reason = str(condition.get("reason") or "")
        if (kind == "Progressing" and status == "False") or (
            kind == "ReplicaFailure" and status == "True"
        ):
            message = str(condition.get("message") or "").strip()
            return f"the Deployment reports {reason or kind}" + (f": {message}" if message else "")
    return None


def _stopping(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _by_name(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(pods, key=lambda pod: str((pod.get("metadata") or {}).get("name") or ""))


def _restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(status.get("restartCount") or 0) for status in statuses)


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False
