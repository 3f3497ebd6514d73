"""A container's memory as the host sees it: its cgroup's counters and processes, its shims.

Read from /proc and the cgroup filesystems (v1 memory controller or v2 unified), never from
the engine: the same numbers ``docker stats`` and the kernel report, checkable by hand.
Podman's backend reads its containers through the same functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.values import BackendError
from bench.workloads.hostmem import process_tree


@dataclass(frozen=True, slots=True)
class CgroupMemory:
    """Memory charged to a container's cgroup."""

    version: int
    path: Path
    usage: int  # memory.usage_in_bytes (v1) / memory.current (v2)
    inactive_file: int  # reclaimable page cache, excluded from the working set
    stat: Mapping[str, int]

    @property
    def working_set(self) -> int:
        """usage - inactive_file: what ``docker stats`` and kubelet report."""
        return max(0, self.usage - self.inactive_file)


def _cgroup_mounts() -> dict[str, Path]:
    """Mount points of cgroup hierarchies: ``memory`` (v1) and ``unified`` (v2)."""
    mounts: dict[str, Path] = {}
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fstype, _source, options = [*right.split(), "", "", ""][:3]
            mountpoint = Path(left.split()[4])
            if fstype == "cgroup2":
                mounts.setdefault("unified", mountpoint)
            elif fstype == "cgroup" and "memory" in options.split(","):
                mounts.setdefault("memory", mountpoint)
    return mounts


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _read_stat(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def cgroup_memory(pid: int) -> CgroupMemory:
    """Memory of the cgroup ``pid`` lives in (cgroup v1 memory controller, else v2)."""
    mounts = _cgroup_mounts()
    v1_rel = v2_rel = None
    with Path(f"/proc/{pid}/cgroup").open(encoding="utf-8") as fh:
        for line in fh:
            _, controllers, rel = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                v1_rel = rel
            elif controllers == "":
                v2_rel = rel
    if v1_rel is not None and "memory" in mounts:
        path = mounts["memory"] / v1_rel.lstrip("/")
        stat = _read_stat(path / "memory.stat")
        inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
        return CgroupMemory(1, path, _read_int(path / "memory.usage_in_bytes"), inactive, stat)
    if v2_rel is not None and "unified" in mounts:
        path = mounts["unified"] / v2_rel.lstrip("/")
        stat = _read_stat(path / "memory.stat")
        return CgroupMemory(
            2, path, _read_int(path / "memory.current"), stat.get("inactive_file", 0), stat
        )
    msg = f"no memory cgroup found for pid {pid}"
    raise BackendError(msg)


#: Host processes that exist for one container: its shim and (while alive) its runtime.
_PER_CONTAINER = ("containerd-shim", "runc", "crun", "runsc")


def shim_processes(container_id: str) -> list[psutil.Process]:
    """The containerd-shim (and runtime, if still alive) processes serving ``container_id``."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        cmdline = proc.info["cmdline"] or []
        if name.startswith(_PER_CONTAINER) and any(container_id in arg for arg in cmdline):
            found.append(proc)
    return found


def cgroup_pids(cgroup: CgroupMemory) -> list[int]:
    """Every process in the container's cgroup (``cgroup.procs``)."""
    text = (cgroup.path / "cgroup.procs").read_text(encoding="ascii")
    return [int(line) for line in text.split()]


def environment_pids(container_pids: Sequence[int], shims: Sequence[psutil.Process]) -> list[int]:
    """The container's host processes: its cgroup's, plus each shim and its descendants."""
    pids = list(container_pids)
    for shim in shims:
        pids += process_tree(shim.pid)
    return list(dict.fromkeys(pids))
