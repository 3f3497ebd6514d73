"""The syscall workload: the probe's null and mixed system-call loops."""

from __future__ import annotations

from bench.scenario.model import SyscallWorkload
from bench.values import BackendError, Measurement, Outcome
from bench.workloads.execution import Executor, check_exit, parse_keyvalues


def syscall_argv(probe: str, workload: SyscallWorkload, directory: str = "/dev/shm") -> list[str]:
    """argv of the syscall workload."""
    iters = max(1, workload.mixed_calls // 4)
    return [probe, "syscall", str(workload.null_calls), str(iters), directory]


def parse_syscall(stdout: str) -> Outcome:
    """Turn the probe's syscall output into samples."""
    kv = parse_keyvalues(stdout)
    try:
        measurements = [
            Measurement("syscall.null_rate", float(kv["null_rate"])),
            Measurement("syscall.mixed_rate", float(kv["mixed_rate"])),
        ]
    except (KeyError, ValueError) as exc:
        msg = f"unparseable syscall probe output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc
    facts: dict[str, str] = {k: kv[k] for k in ("kernel", "dir") if k in kv}
    return Outcome(measurements, facts)


def run_syscall(
    execute: Executor, probe: str, workload: SyscallWorkload, timeout: float
) -> Outcome:
    """Run the syscall workload through ``execute`` (tmpfs /dev/shm, else /tmp)."""
    result = execute(syscall_argv(probe, workload), timeout)
    if result.returncode != 0:
        result = execute(syscall_argv(probe, workload, "/tmp"), timeout)
    check_exit(result, "syscall probe")
    return parse_syscall(result.stdout)
