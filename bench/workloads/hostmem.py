"""Host memory an environment costs: PSS summed over its host processes (``memory.environment``).

One definition for every backend (docs/report.md): the environment's *host* processes are

* native: the workload's process tree (the process the harness spawned and its descendants);
* docker: the container's processes (its cgroup) plus the containerd-shim serving it and any
  runtime process still alive for it (``runc``/``crun``/``runsc``), found on the host;
* VM: the VMM process (QEMU) and its descendants.

and ``memory.environment`` is the sum of their ``Pss`` from ``/proc/PID/smaps_rollup``, read
while the workload idles after touching its memory, with the memory files those processes hold
open or map (memfd, tmpfs, SysV shm: :mod:`bench.workloads.memfiles`) counted once each at
their allocated size in place of the PSS of their mappings. Shared daemons (dockerd,
containerd, libvirtd) serve every environment at once and are not counted. ``smem -c "pid
pss"`` sums the same ``Pss`` lines from ``/proc/PID/smaps`` and ``stat -L -c '%b %B'
/proc/PID/fd/N`` gives a memory file's size, so the figure can be redone by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

from bench.values import BackendError
from bench.workloads.memfiles import (
    NO_MEMORY_FILES,
    MemoryFile,
    MemoryFiles,
    SmapsEntry,
    account,
    kernel_memory_devices,
    mapped_file,
    open_files,
    process_mounts,
    read_mappings,
)

#: Lines of smaps_rollup kept, all in kB in the file, all in bytes here.
_FIELDS: Final = (
    "Rss",
    "Pss",
    "Pss_Anon",
    "Pss_File",
    "Pss_Shmem",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Swap",
    "SwapPss",
)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One process's ``/proc/PID/smaps_rollup``, in bytes (absent lines are 0)."""

    rss: int
    pss: int
    pss_anon: int
    pss_file: int
    pss_shmem: int
    private: int  # Private_Clean + Private_Dirty: the USS, freed if the process exits
    swap_pss: int


def parse_smaps_rollup(text: str) -> Rollup:
    """Parse smaps_rollup text (``Name:   123 kB`` lines); ValueError without a Pss line."""
    kb: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or name not in _FIELDS or not parts:
            continue
        if len(parts) > 1 and parts[1] != "kB":
            msg = f"unexpected unit {parts[1]!r} in smaps_rollup line {line!r}"
            raise ValueError(msg)
        kb[name] = int(parts[0])
    if "Pss" not in kb:
        msg = "no Pss line in smaps_rollup text"
        raise ValueError(msg)
    size = {name: kb.get(name, 0) * 1024 for name in _FIELDS}
    return Rollup(
        rss=size["Rss"],
        pss=size["Pss"],
        pss_anon=size["Pss_Anon"],
        pss_file=size["Pss_File"],
        pss_shmem=size["Pss_Shmem"],
        private=size["Private_Clean"] + size["Private_Dirty"],
        swap_pss=size["SwapPss"],
    )


def read_rollup(pid: int, proc: Path = Path("/proc")) -> Rollup | None:
    """``/proc/PID/smaps_rollup`` parsed; None when the process is gone (or a kernel thread)."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not text.strip():  # kernel threads and zombies have no mappings
        return None
    return parse_smaps_rollup(text)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (empty when ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [pid, *(child.pid for child in children)]


@dataclass(frozen=True, slots=True)
class EnvironmentMemory:
    """An environment's host memory: its processes' summed smaps_rollup and its memory files."""

    pss: int  # memory.environment = process_pss - memfiles.mapped_pss + memfiles.allocated
    rss: int
    private: int
    swap_pss: int
    pids: tuple[int, ...]  # the processes that were read (gone ones are left out)
    process_pss: int = 0  # the plain sum of the processes' smaps_rollup Pss
    memfiles: MemoryFiles = NO_MEMORY_FILES

    def facts(self, prefix: str = "environment") -> dict[str, str]:
        """Facts recorded with the sample, so the sum can be checked by hand."""
        files = self.memfiles
        facts = {
            f"{prefix}_pids": ",".join(str(p) for p in self.pids),
            f"{prefix}_rss_bytes": str(self.rss),
            f"{prefix}_uss_bytes": str(self.private),
            f"{prefix}_swap_pss_bytes": str(self.swap_pss),
            f"{prefix}_process_pss_bytes": str(self.process_pss),
            f"{prefix}_memfile_bytes": str(files.allocated),
            f"{prefix}_memfile_mapped_pss_bytes": str(files.mapped_pss),
            f"{prefix}_memfiles": "; ".join(f.describe() for f in files.files) or "none",
        }
        if files.unsized:
            facts[f"{prefix}_memfiles_unsized"] = "; ".join(files.unsized)
        return facts


def sum_rollups(
    rollups: Mapping[int, Rollup], memfiles: MemoryFiles = NO_MEMORY_FILES
) -> EnvironmentMemory:
    """Add up per-process rollups; memory files replace the PSS of their mappings (pure)."""
    values = list(rollups.values())
    process_pss = sum(r.pss for r in values)
    return EnvironmentMemory(
        pss=process_pss - memfiles.mapped_pss + memfiles.allocated,
        rss=sum(r.rss for r in values),
        private=sum(r.private for r in values),
        swap_pss=sum(r.swap_pss for r in values),
        pids=tuple(sorted(rollups)),
        process_pss=process_pss,
        memfiles=memfiles,
    )


def _permission_error(pid: int, path: str, exc: PermissionError) -> BackendError:
    msg = (
        f"cannot read /proc/{pid}/{path} ({exc.strerror}): memory.environment "
        "needs the harness to run as root or as the environment's owner"
    )
    return BackendError(msg)


def memory_files(pids: Iterable[int]) -> MemoryFiles:
    """The memory files ``pids`` hold open or map, and the PSS of their mappings, read now."""
    mounts = {pid: process_mounts(pid) for pid in pids}
    devices = set(kernel_memory_devices()).union(*(m.devices for m in mounts.values()))
    found: list[MemoryFile] = []
    mappings: dict[int, list[SmapsEntry]] = {}
    for pid, namespace in mounts.items():
        try:
            found += open_files(pid, devices, namespace.elsewhere)
            mappings[pid] = read_mappings(pid, devices)
        except PermissionError as exc:
            raise _permission_error(pid, "fd", exc) from exc
    held = {(f.dev, f.inode) for f in found}
    for pid, entries in mappings.items():
        for entry in entries:
            if entry.key not in held and (sized := mapped_file(pid, entry)) is not None:
                found.append(sized)
                held.add(entry.key)
    return account(found, mappings, devices)


def environment_memory(pids: Iterable[int]) -> EnvironmentMemory:
    """Read smaps_rollup of each distinct pid and its memory files now, and sum them.

    Gone processes count 0.
    """
    rollups: dict[int, Rollup] = {}
    for pid in dict.fromkeys(pids):
        try:
            rollup = read_rollup(pid)
        except PermissionError as exc:
            raise _permission_error(pid, "smaps_rollup", exc) from exc
        if rollup is not None:
            rollups[pid] = rollup
    return sum_rollups(rollups, memory_files(rollups))


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` lines as bytes (``MemTotal: 1000 kB`` -> 1024000; counts as is)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            out[name.strip()] = int(parts[0]) * factor
    return out
