"""A container's default seccomp profile (JSON), compiled to a BPF program with libseccomp.

The profile is the containers/common one that ships with Podman's dependencies
(``/usr/share/containers/seccomp.json``), the same format as Docker's default profile and
close to it in content. Rules are selected the way an engine does for an unprivileged
container: a rule applies when the container's capabilities (Docker's default set) and the
host's architecture satisfy its ``includes`` and not its ``excludes``. :func:`select_rules` is
pure; :func:`compile_profile` needs libseccomp's Python bindings (Debian ``python3-seccomp``, or
``pyseccomp`` from PyPI, which loads the same libseccomp2 through ctypes).
"""

from __future__ import annotations

import errno
import importlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

PROFILE: Final = Path("/usr/share/containers/seccomp.json")
PROFILE_HINT: Final = (
    "apt-get install golang-github-containers-common (ships /usr/share/containers/seccomp.json)"
)
BINDINGS_HINT: Final = "apt-get install libseccomp2 && pip install pyseccomp"
#: The capabilities Docker grants a container by default (moby's oci/caps/defaults.go).
DEFAULT_CAPS: Final = frozenset(
    {
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    }
)
#: Profile architecture names of the machine types we may run on.
_ARCH: Final = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}


class SeccompUnavailableError(RuntimeError):
    """The profile or libseccomp's bindings are missing; ``hint`` says how to install them."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Rule:
    """One selected rule: syscall names, action (``allow``/``errno``), errno, argument tests."""

    names: tuple[str, ...]
    action: str
    errno_ret: int
    args: tuple[tuple[int, str, int, int], ...]  # (index, op, value, value_two)


def host_arch() -> str:
    """The profile's name for this machine (``amd64`` on x86_64)."""
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def _applies(entry: Mapping[str, Any], caps: frozenset[str], arch: str) -> bool:
    includes = entry.get("includes") or {}
    excludes = entry.get("excludes") or {}
    if includes.get("caps") and not caps.intersection(includes["caps"]):
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if excludes.get("caps") and caps.intersection(excludes["caps"]):
        return False
    return not (excludes.get("arches") and arch in excludes["arches"])


def select_rules(
    profile: Mapping[str, Any], caps: frozenset[str] = DEFAULT_CAPS, arch: str | None = None
) -> tuple[int, list[Rule]]:
    """(default errno, rules that apply to a container with ``caps`` on ``arch``)."""
    arch = arch or host_arch()
    if profile.get("defaultAction") != "SCMP_ACT_ERRNO":
        msg = (
            f"unsupported defaultAction {profile.get('defaultAction')!r} (expected SCMP_ACT_ERRNO)"
        )
        raise ValueError(msg)
    default_errno = int(profile.get("defaultErrnoRet") or errno.EPERM)
    rules: list[Rule] = []
    for entry in profile.get("syscalls") or []:
        if not _applies(entry, caps, arch):
            continue
        action = {"SCMP_ACT_ALLOW": "allow", "SCMP_ACT_ERRNO": "errno"}.get(entry["action"])
        if action is None:
            msg = f"unsupported action {entry['action']!r} for {entry['names'][:3]}"
            raise ValueError(msg)
        args = tuple(
            (int(a["index"]), str(a["op"]), int(a["value"]), int(a.get("valueTwo") or 0))
            for a in entry.get("args") or []
        )
        errno_ret = int(entry.get("errnoRet") or errno.EPERM)
        rules.append(Rule(tuple(entry["names"]), action, errno_ret, args))
    return default_errno, rules


def _bindings() -> Any:
    for module in ("seccomp", "pyseccomp"):
        try:
            return importlib.import_module(module)
        except (ImportError, OSError):  # pyseccomp raises OSError without libseccomp2
            continue
    msg = "no libseccomp bindings for Python (neither seccomp nor pyseccomp importable)"
    raise SeccompUnavailableError(msg, BINDINGS_HINT)


def compile_profile(target: Path, profile_path: Path = PROFILE) -> dict[str, str]:
    """Compile ``profile_path`` into a BPF program at ``target``; return facts about it."""
    if not profile_path.is_file():
        msg = f"seccomp profile {profile_path} not found"
        raise SeccompUnavailableError(msg, PROFILE_HINT)
    lib = _bindings()
    default_errno, rules = select_rules(json.loads(profile_path.read_text()))
    syscall_filter = lib.SyscallFilter(lib.ERRNO(default_errno))
    known = skipped = 0
    for rule in rules:
        action = lib.ALLOW if rule.action == "allow" else lib.ERRNO(rule.errno_ret)
        conditions = [lib.Arg(i, getattr(lib, op.removeprefix("SCMP_CMP_")), v, v2)
                      for i, op, v, v2 in rule.args]  # fmt: skip
        for name in rule.names:
            try:
                number = int(lib.resolve_syscall(lib.Arch.NATIVE, name))
            except (ValueError, RuntimeError, OSError):
                number = -1
            if number == -1:  # __NR_SCMP_ERROR: a name libseccomp does not know (engines skip)
                skipped += 1
                continue
            syscall_filter.add_rule(action, name, *conditions)
            known += 1
    with target.open("wb") as fh:
        syscall_filter.export_bpf(fh)
    return {
        "seccomp_profile": str(profile_path),
        "seccomp_rules": f"{known} syscall rules ({skipped} names unknown to libseccomp)",
        "seccomp_bpf_bytes": str(target.stat().st_size),
        "seccomp_bindings": lib.__name__,
    }


__all__: Sequence[str] = [
    "DEFAULT_CAPS",
    "PROFILE",
    "Rule",
    "SeccompUnavailableError",
    "compile_profile",
    "select_rules",
]
