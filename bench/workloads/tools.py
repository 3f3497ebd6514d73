"""Are a scenario's tools on the host? (The native backend's check before it runs anything.)

Inside the guest environment the same question is settled before the run starts (the built
image and box contain ``requires:``, see :func:`bench.envbuild.rootfs.missing_packages`). On
the host, a missing package or program makes the native backend skip the scenario with the
reason (``skipped`` rows), instead of failing every repetition the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.scenario.model import CommandWorkload, DiskWorkload, Scenario


def programs(scenario: Scenario) -> list[str]:
    """Programs the workload executes (found on PATH, or as given when absolute)."""
    workload = scenario.workload
    if isinstance(workload, DiskWorkload):
        return ["fio"]
    if isinstance(workload, CommandWorkload):
        wanted = [workload.command[0]]
        if workload.parser == "time":
            wanted.insert(0, "/usr/bin/time")
        return wanted
    return []


def package_installed(name: str) -> bool | None:
    """Whether Debian package ``name`` is installed here (None: no dpkg to ask)."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return None
    proc = subprocess.run(
        [dpkg, "-W", "-f=${db:Status-Status}", name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == "installed"


def _found(program: str) -> bool:
    if "/" in program:
        path = Path(program)
        return path.is_file() and bool(path.stat().st_mode & 0o111)
    return shutil.which(program) is not None


def host_problems(scenario: Scenario) -> list[str]:
    """Why the host cannot run the scenario's workload (empty: it can)."""
    out = [
        f"package {name} (requires) is not installed on the host: apt-get install {name}"
        for name in scenario.requires
        if package_installed(name) is False
    ]
    out += [
        f"program {program!r} (run by the workload) is not found on the host's PATH"
        for program in programs(scenario)
        if not _found(program)
    ]
    return out
