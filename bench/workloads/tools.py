"""Are a scenario's tools there? On the host (native) or in a running environment (the VM).

Inside the guest environment the same question is settled before the run starts (the built
image and box contain ``requires:``, see :func:`bench.envbuild.rootfs.missing_packages`). On
the host, a missing package or program makes the native backend skip the scenario with the
reason (``skipped`` rows), instead of failing every repetition the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.scenario.model import CommandWorkload, DiskWorkload, Scenario
from bench.workloads import Executor


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


#: Prints ``missing-package NAME`` / ``missing-program NAME`` for each one absent (POSIX sh).
_GUEST_CHECK = """
for p in "$@"; do
  case "$p" in
  package:*) n=${p#package:}
    s=$(dpkg-query -W -f='${db:Status-Status}' "$n" 2>/dev/null)
    [ "$s" = installed ] || echo "missing-package $n" ;;
  program:*) n=${p#program:}
    command -v "$n" >/dev/null 2>&1 || echo "missing-program $n" ;;
  esac
done
"""


def parse_guest_check(stdout: str) -> tuple[list[str], list[str]]:
    """(missing packages, missing programs) from the output of the guest check."""
    packages: list[str] = []
    programs_: list[str] = []
    for line in stdout.splitlines():
        kind, _, name = line.strip().partition(" ")
        if kind == "missing-package" and name:
            packages.append(name)
        elif kind == "missing-program" and name:
            programs_.append(name)
    return packages, programs_


def guest_problems(execute: Executor, scenario: Scenario, where: str, timeout: float) -> list[str]:
    """Why the running environment ``where`` cannot run the scenario (empty: it can).

    One ``sh`` call through ``execute`` asks dpkg for each ``requires:`` package and the
    shell for each program the workload runs; the messages name the package and the command
    that adds it, as ``validate``/``run`` do.
    """
    args: Sequence[str] = [
        *(f"package:{name}" for name in scenario.requires),
        *(f"program:{name}" for name in programs(scenario)),
    ]
    if not args:
        return []
    result = execute(["sh", "-c", _GUEST_CHECK, "sh", *args], timeout)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-300:]
        return [f"cannot check the workload's tools in {where}: {tail}"]
    packages, missing = parse_guest_check(result.stdout)
    return [
        *(
            f"package {name} (requires) is not installed in {where}: add it with: "
            "isobench env build <this scenario file>"
            for name in packages
        ),
        *(
            f"program {name!r} (run by the workload) is not found in {where}; declare its "
            "Debian package under requires: and run isobench env build <this scenario file>"
            for name in missing
        ),
    ]
