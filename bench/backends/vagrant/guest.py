"""What runs in a prepared VM besides the probe: the storage under test and the workload's tools.

* :func:`check_tools`: before any repetition, the ``requires:`` packages and the programs the
  workload runs are looked up in the running guest (one ``sh`` call), and fio's asynchronous
  engines are tried there; a missing one is a :class:`~bench.values.BackendUnavailable` (the
  pair's rows are ``skipped`` with the package and the command that adds it), the same
  refusal native (host tools) and Docker (fio engines) give.
* :func:`run_command_in_storage`: a ``command`` runs with the storage under test as its working
  directory, the guest's virtio disk (:data:`GUEST_DISK_DIR`, where fio runs too), as native
  and Docker run it in theirs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from bench.backends.vagrant.vm import VIRSH, VagrantVM, run_quiet
from bench.scenario.model import CommandWorkload, DiskWorkload, Scenario
from bench.values import BackendUnavailable, Outcome
from bench.workloads import Executor, disk_placement, run_command
from bench.workloads.fio import check_engines
from bench.workloads.tools import guest_problems

#: fio's and commands' directory in the guest: on the virtio root disk (ext4), not tmpfs.
GUEST_DISK_DIR: Final = "/var/tmp/isobench"


def check_tools(vm: VagrantVM, scenario: Scenario, prefix: list[str]) -> None:
    """Refuse, before any repetition, a workload whose tools the guest lacks."""
    execute: Executor = functools.partial(vm.execute, prefix=prefix)
    problems = guest_problems(execute, scenario, f"the VM (box {vm.spec.box})", 60)
    if problems:  # skipped rows with the reason, not one failure per repetition
        raise BackendUnavailable("; ".join(problems))
    workload = scenario.workload
    if isinstance(workload, DiskWorkload) and workload.jobs:
        check_engines(execute, workload, GUEST_DISK_DIR, scenario.timeout)


def domain_disk_facts(vm: VagrantVM) -> tuple[dict[str, str], str | None]:
    """Where the guest's disk lives on the host (the domain's image); or why it is unknown."""
    image = run_quiet([*VIRSH, "vol-path", "--pool", "default", f"{vm.domain}.img"], 30)
    path = image.stdout.strip()
    if image.returncode != 0 or not path:
        return {}, f"disk image of {vm.domain} not found: {image.stderr.strip()}"
    return disk_placement(Path(path)), None


def run_command_in_storage(
    vm: VagrantVM, prefix: list[str], workload: CommandWorkload, timeout: float
) -> Outcome:
    """The command with :data:`GUEST_DISK_DIR` as its working directory."""
    in_storage = [*prefix, "env", "-C", GUEST_DISK_DIR]  # coreutils env: chdir, then exec
    execute: Executor = functools.partial(vm.execute, prefix=in_storage)
    outcome = run_command(execute, workload, timeout)
    facts = {
        "workdir": GUEST_DISK_DIR,
        "storage": f"guest virtio disk ({GUEST_DISK_DIR}, ext4 on /dev/vda)",
        **domain_disk_facts(vm)[0],
    }
    return Outcome(outcome.measurements, {**outcome.facts, **facts})
