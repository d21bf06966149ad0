"""Images that ask to be started through a network wrapper (the docker-proxy job type's).

An image labelled ``racetrack.network-wrapper=/path`` is run with that program as its
entrypoint, followed by ``--`` and the image's own entrypoint and command; the program serves
the job on ``JOB_PORT`` and starts that command in a private network namespace of its own
(``racetrack_plugins/docker_proxy/proxy``). Making one takes a user namespace, which Docker's
default seccomp profile refuses, so these containers get ``SECCOMP_PROFILE``: everything
allowed but the system calls Docker's default profile denies for a container without extra
capabilities (mounting, kernel modules, keyrings, BPF...), ``ptrace`` (which Docker allows),
and the namespaces other than user and network. No capability is added: the wrapper and the
job's command run as the image's user.
"""

from __future__ import annotations

import json
from typing import Any

from racetrack_core.images import LABEL_NETWORK_WRAPPER as WRAPPER_LABEL

_DENIED = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
    "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
    "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot", "request_key",
    "set_mempolicy", "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog",
    "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
    "vm86", "vm86old", "clone3",
]  # fmt: skip
#: clone() flags that make namespaces other than user and network.
_OTHER_NAMESPACES = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWCGROUP": 0x02000000,
}  # fmt: skip
_EPERM = 1
_ENOSYS = 38


def _profile() -> dict[str, Any]:
    syscalls: list[dict[str, Any]] = [
        {"names": [name for name in _DENIED if name != "clone3"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": _EPERM},
        # clone3 passes its flags in memory, where seccomp cannot look: glibc falls back to
        # clone() on ENOSYS, as it does under Docker's own profile.
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": _ENOSYS},
    ]  # fmt: skip
    for flag in _OTHER_NAMESPACES.values():
        syscalls.append({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": _EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        })  # fmt: skip
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": syscalls,
    }


SECCOMP_PROFILE = json.dumps(_profile(), separators=(",", ":"))


def run_options(image: Any) -> dict[str, Any]:
    """Extra ``containers.run`` arguments for ``image`` (none unless it asks for a wrapper)."""
    config = image.attrs.get("Config") or {}
    wrapper = (config.get("Labels") or {}).get(WRAPPER_LABEL)
    if not wrapper:
        return {}
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    return {
        "entrypoint": [wrapper, "--", *command],
        "command": [],
        "security_opt": [f"seccomp={SECCOMP_PROFILE}"],
    }
