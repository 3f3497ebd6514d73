"""Memory files: RAM an environment holds in files (memfd, tmpfs, SysV shm), which PSS misses.

PSS sees a page only while some process maps it. A file on a memory filesystem keeps its pages
in RAM whether mapped or not: gVisor's Sentry keeps the application's memory in one memfd and
maps only pieces of it at a time; QEMU can back guest RAM with a memfd; a process can fill a
file in ``/dev/shm`` and unmap it. :mod:`bench.workloads.hostmem` therefore counts, for the
environment's processes,

* every **memory file** they hold open (``/proc/PID/fd``) or map (``/proc/PID/smaps``) once per
  distinct (device, inode), at its allocated size ``st_blocks * 512`` (the pages the file has,
  as ``stat -L -c '%b %B'`` prints them: resident, or swapped out on a host with swap);
* minus the ``Pss`` of those same files' mappings, which ``smaps_rollup`` already counted
  (per mapping, from ``/proc/PID/smaps``), so no page counts twice.

A memory file is a regular file on the kernel's internal shmem mount (memfd, SysV shm, shared
anonymous memory: its device is read once from a memfd of our own, likewise the internal
hugetlbfs mount of ``MFD_HUGETLB`` memfds) or on a ``tmpfs``/``hugetlbfs`` mount of the
process's mount namespace (``/proc/PID/mountinfo``). An fd whose ``fdinfo`` names any other
mount is never stat'ed (a stuck NFS or FUSE mount would block). A mapped memory file no
process holds open is sized through ``/proc/PID/map_files`` (root only); one that cannot be
sized keeps its PSS and is named in the facts.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Filesystems whose files hold their pages in RAM (ramfs is left out: it keeps no st_blocks).
MEMORY_FS: Final = frozenset({"tmpfs", "hugetlbfs"})

_HEADER: Final = re.compile(
    r"^(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+)\s+(?P<perms>\S+)\s+[0-9a-f]+\s+"
    r"(?P<major>[0-9a-f]+):(?P<minor>[0-9a-f]+)\s+(?P<inode>\d+)\s*(?P<name>.*)$"
)
_FIELD: Final = re.compile(r"^(\w+):\s+(\d+) kB$")

FileKey = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class SmapsEntry:
    """One ``/proc/PID/smaps`` entry (sizes in bytes; ``dev`` as ``os.makedev`` builds it)."""

    start: int
    end: int
    perms: str
    dev: int
    inode: int
    name: str
    rss: int
    pss: int

    @property
    def size(self) -> int:
        """Virtual size of the mapping."""
        return self.end - self.start

    @property
    def key(self) -> FileKey:
        """The mapped file's (device, inode)."""
        return (self.dev, self.inode)


def parse_smaps(text: str) -> list[SmapsEntry]:
    """The mappings of ``/proc/PID/smaps`` text, with their Rss and Pss (headers carry the file)."""
    mappings: list[SmapsEntry] = []
    header: re.Match[str] | None = None
    kb: dict[str, int] = {}

    def flush() -> None:
        if header is not None:
            mappings.append(
                SmapsEntry(
                    start=int(header["start"], 16),
                    end=int(header["end"], 16),
                    perms=header["perms"],
                    dev=os.makedev(int(header["major"], 16), int(header["minor"], 16)),
                    inode=int(header["inode"]),
                    name=header["name"].strip(),
                    rss=kb.get("Rss", 0) * 1024,
                    pss=kb.get("Pss", 0) * 1024,
                )
            )

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            flush()
            header, kb = match, {}
            continue
        value = _FIELD.match(line.strip())
        if value:
            kb[value.group(1)] = int(value.group(2))
    flush()
    return mappings


@dataclass(frozen=True, slots=True)
class Mounts:
    """A mount namespace as ``/proc/PID/mountinfo`` lists it, split by what its files hold."""

    devices: frozenset[int] = frozenset()  # devices of tmpfs/hugetlbfs mounts
    elsewhere: frozenset[int] = frozenset()  # mount ids of every other filesystem


def parse_mountinfo(text: str) -> Mounts:
    """Memory devices and the ids of the other mounts, from ``/proc/PID/mountinfo`` text."""
    devices: set[int] = set()
    elsewhere: set[int] = set()
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, fstype = left.split(), right.split()[:1]
        if not sep or len(fields) < 3 or not fstype or not fields[0].isdigit():
            continue
        if fstype[0] in MEMORY_FS:
            major, _, minor = fields[2].partition(":")
            devices.add(os.makedev(int(major), int(minor)))
        else:
            elsewhere.add(int(fields[0]))
    return Mounts(frozenset(devices), frozenset(elsewhere))


def fdinfo_mount(text: str) -> int | None:
    """The ``mnt_id:`` of ``/proc/PID/fdinfo/N`` text (None when absent)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "mnt_id" and value.strip().isdigit():
            return int(value)
    return None


@dataclass(frozen=True, slots=True)
class MemoryFile:
    """One distinct memory file of the environment and what it holds (bytes)."""

    dev: int
    inode: int
    name: str  # as /proc shows it, e.g. "/memfd:runsc-memory (deleted)"
    allocated: int  # st_blocks * 512
    holders: tuple[int, ...]  # pids that hold it open or map it

    def describe(self) -> str:
        """``name dev=MAJ:MIN ino=N bytes=B pids=P,Q``: enough to find and stat it by hand."""
        dev = f"{os.major(self.dev)}:{os.minor(self.dev)}"
        pids = ",".join(str(p) for p in self.holders)
        return f"{self.name} dev={dev} ino={self.inode} bytes={self.allocated} pids={pids}"


@dataclass(frozen=True, slots=True)
class MemoryFiles:
    """An environment's memory files and the PSS their mappings already had (bytes)."""

    files: tuple[MemoryFile, ...] = ()
    mapped_pss: int = 0  # Pss of their mappings, taken out of the processes' sum
    unsized: tuple[str, ...] = ()  # mapped, size unreadable: their PSS kept

    @property
    def allocated(self) -> int:
        """What the files hold: the sum of their allocated sizes."""
        return sum(f.allocated for f in self.files)


#: No memory files (an environment of plain processes).
NO_MEMORY_FILES: Final = MemoryFiles()


def account(
    files: Iterable[MemoryFile], mappings: Mapping[int, list[SmapsEntry]], devices: Set[int]
) -> MemoryFiles:
    """The files (merged per (dev, inode)) and the PSS of their mappings (pure).

    ``mappings`` holds each pid's smaps entries; an entry on a memory device whose file is not
    among ``files`` could not be sized: its PSS stays counted and its name is reported.
    """
    first: dict[FileKey, MemoryFile] = {}
    holders: dict[FileKey, set[int]] = {}
    for item in files:
        key = (item.dev, item.inode)
        first.setdefault(key, item)
        holders.setdefault(key, set()).update(item.holders)
    mapped = 0
    unsized: set[str] = set()
    for pid, entries in mappings.items():
        for entry in entries:
            if entry.key in first:
                mapped += entry.pss
                holders[entry.key].add(pid)
            elif entry.dev in devices and entry.inode:
                unsized.add(entry.name)
    merged = [
        MemoryFile(f.dev, f.inode, f.name, f.allocated, tuple(sorted(holders[key])))
        for key, f in first.items()
    ]
    ordered = sorted(merged, key=lambda f: (-f.allocated, f.dev, f.inode))
    return MemoryFiles(tuple(ordered), mapped, tuple(sorted(unsized)))


# --- reading /proc (the edge) -------------------------------------------------------------------


@functools.cache
def kernel_memory_devices() -> frozenset[int]:
    """Devices of the kernel's internal shmem (and hugetlbfs) mounts, from memfds of our own."""
    devices: set[int] = set()
    for flags in (0, getattr(os, "MFD_HUGETLB", None)):
        if flags is None:
            continue
        try:
            fd = os.memfd_create("isobench-device-probe", flags)
        except OSError:  # no hugetlbfs in this kernel
            continue
        try:
            devices.add(os.fstat(fd).st_dev)
        finally:
            os.close(fd)
    return frozenset(devices)


def process_mounts(pid: int, proc: Path = Path("/proc")) -> Mounts:
    """``pid``'s mount namespace, split (empty when it is gone)."""
    try:
        return parse_mountinfo((proc / str(pid) / "mountinfo").read_text(encoding="utf-8"))
    except (FileNotFoundError, ProcessLookupError):
        return Mounts()


def open_files(
    pid: int, devices: Set[int], elsewhere: Set[int] = frozenset(), proc: Path = Path("/proc")
) -> Iterator[MemoryFile]:
    """The memory files ``pid`` holds open (``stat -L /proc/PID/fd/N`` of each fd).

    An fd whose ``fdinfo`` names a mount in ``elsewhere`` (disk, NFS, FUSE...) is skipped
    without a stat, which a stuck network or FUSE filesystem could block.
    """
    try:
        entries = list((proc / str(pid) / "fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return
    for entry in entries:
        try:
            info = (proc / str(pid) / "fdinfo" / entry.name).read_text(encoding="utf-8")
            if fdinfo_mount(info) in elsewhere:
                continue
            st = entry.stat()  # follows the magic link to the open file itself
            name = str(entry.readlink())
        except (FileNotFoundError, ProcessLookupError):
            continue  # closed meanwhile
        if stat.S_ISREG(st.st_mode) and st.st_dev in devices:
            yield MemoryFile(st.st_dev, st.st_ino, name, st.st_blocks * 512, (pid,))


def read_mappings(pid: int, devices: Set[int], proc: Path = Path("/proc")) -> list[SmapsEntry]:
    """``pid``'s smaps entries of files on memory devices (empty when it is gone)."""
    try:
        text = (proc / str(pid) / "smaps").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [m for m in parse_smaps(text) if m.dev in devices and m.inode]


def mapped_file(pid: int, mapping: SmapsEntry, proc: Path = Path("/proc")) -> MemoryFile | None:
    """A mapped memory file sized through ``/proc/PID/map_files`` (None: gone or not root)."""
    path = proc / str(pid) / "map_files" / f"{mapping.start:x}-{mapping.end:x}"
    try:
        st = path.stat()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return MemoryFile(st.st_dev, st.st_ino, mapping.name, st.st_blocks * 512, (pid,))
