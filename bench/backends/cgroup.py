"""Transient cgroups (v1 or v2) that apply a scenario's limits to a workload the harness spawns.

Limits are applied the way Docker applies them: CFS quota for ``cpus``,
``memory.limit_in_bytes`` / ``memory.max`` for ``memory``, in a cgroup created as a child of
the harness's own cgroup. Shared by the native backend and the sandbox backend's ``+cgroup``
rungs (which create one even without limits, as Docker does for every container).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from bench.scenario.model import Limits

_CFS_PERIOD_US: Final = 100_000


class Cgroup:
    """A transient cgroup (v1 controllers or v2 unified) holding one workload at a time."""

    def __init__(self, directories: Sequence[Path], description: str) -> None:
        self.directories = list(directories)
        self.description = description
        self._procs = [d / "cgroup.procs" for d in self.directories]
        self._home = [d.parent / "cgroup.procs" for d in self.directories]

    @classmethod
    def create(cls, limits: Limits, tag: str, always: bool = False) -> Cgroup:
        """Create a child of our own cgroup applying ``limits``; OSError if not possible.

        ``always``: create the memory and cpu cgroups even for an unset limit (accounting,
        and the cost of the mechanism itself); otherwise only the limited controllers.
        """
        own = _own_cgroups()
        root = Path("/sys/fs/cgroup")
        made: list[Path] = []
        try:
            if (root / "cgroup.controllers").exists():  # pure cgroup v2
                directory = root / own.get("", "/").lstrip("/") / tag
                directory.mkdir()
                made.append(directory)
                if limits.memory is not None:
                    (directory / "memory.max").write_text(str(int(limits.memory)))
                if limits.cpus is not None:
                    quota = int(limits.cpus * _CFS_PERIOD_US)
                    (directory / "cpu.max").write_text(f"{quota} {_CFS_PERIOD_US}")
                return cls(made, f"cgroup v2 {directory}")
            if limits.memory is not None or always:
                directory = root / "memory" / own.get("memory", "/").lstrip("/") / tag
                directory.mkdir()
                made.append(directory)
                if limits.memory is not None:
                    (directory / "memory.limit_in_bytes").write_text(str(int(limits.memory)))
            if limits.cpus is not None or always:
                controller = "cpu,cpuacct" if (root / "cpu,cpuacct").is_dir() else "cpu"
                key = next((k for k in own if "cpu" in k.split(",")), "cpu")
                directory = root / controller / own.get(key, "/").lstrip("/") / tag
                directory.mkdir()
                made.append(directory)
                if limits.cpus is not None:
                    (directory / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
                    quota = int(limits.cpus * _CFS_PERIOD_US)
                    (directory / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError:
            for directory in reversed(made):
                _rmdir(directory)
            raise
        return cls(made, "cgroup v1 " + ", ".join(str(d) for d in made))

    @contextmanager
    def attached(self) -> Iterator[None]:
        """Move the harness itself in, so the child it spawns is born there, then back.

        Done this way (instead of a pre-exec hook in the child) because ``preexec_fn``
        forces subprocess to fork() the whole interpreter instead of vfork(), which alone
        costs ~3 ms per launch here and would pollute the startup figures.
        """
        pid = str(os.getpid())
        for procs in self._procs:
            Path(procs).write_text(pid)
        try:
            yield
        finally:
            for procs in self._home:
                Path(procs).write_text(pid)

    def remove(self) -> None:
        """Remove the cgroup directories (their processes have exited)."""
        for directory in reversed(self.directories):
            _rmdir(directory)


def _own_cgroups() -> dict[str, str]:
    """controller list -> path of this process's cgroup ("" is the v2 hierarchy)."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        out[controllers] = path
    return out


def _rmdir(directory: Path) -> None:
    for _ in range(20):  # a just-killed task may linger for a few ms
        try:
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
        else:
            return


def limits_text(limits: Limits) -> str:
    """``cpus=1.5,memory=268435456``: the requested limits, as recorded in facts."""
    parts = []
    if limits.cpus is not None:
        parts.append(f"cpus={limits.cpus:g}")
    if limits.memory is not None:
        parts.append(f"memory={int(limits.memory)}")
    return ",".join(parts)
