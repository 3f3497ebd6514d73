"""What the native backend measures with the probe itself: start-up and host memory.

Both launch the static probe through a :class:`~bench.backends.native.launch.ProcessLauncher`
(the sandbox's wraps it in bwrap), so the definitions are the same for both backends.
"""

from __future__ import annotations

import time
from typing import Final

from bench.backends.native.launch import ProcessLauncher, read_until
from bench.procgroup import kill_tree
from bench.sysinfo import vm_hwm
from bench.values import BackendError, Measurement, Outcome
from bench.workloads import MemoryWorkload, parse_keyvalues
from bench.workloads.hostmem import environment_memory, process_tree

#: The ``timed_by`` fact of a start-up sample: what read its clocks, and in which state.
TIMED_BY: Final = (
    "isobench-launch: clocks around posix_spawnp..waitpid (as hyperfine -N), "
    "right after one untimed launch of the same command (hyperfine's warm-up), back to back"
)

#: Metric names this backend emits itself (the workloads module declares the rest).
EMITS: Final = frozenset(
    {"startup.ready", "startup.total", "memory.environment", "memory.workload_peak"}
)


def startup(launcher: ProcessLauncher, probe: str, timeout: float) -> Outcome:
    """ready = probe's first-instruction clock - t0; total = reaped - t0 (the launcher's clocks).

    t0 and the reap are read by the C launcher (:meth:`ProcessLauncher.run_timed`) right
    around posix_spawnp and waitpid, as ``hyperfine -N`` reads them: ready on CLOCK_REALTIME
    (the clock the probe prints), total on CLOCK_MONOTONIC.

    The timed launch follows an untimed one of the same command, back to back inside the
    launcher (hyperfine's warm-up), as each run of hyperfine's loop follows the previous one.
    Without it the figure depends on how long the host idled before: here +26-50 % after a
    20 ms pause, +15-25 % after 0.3 ms (docs/spectrum.md), i.e. on the runner's own pace and
    on the variant run before.
    """
    run = launcher.run_timed([probe, "ready"], timeout, "probe ready", warmups=1)
    times = run.times
    if times.returncode != 0:
        msg = f"probe ready exited with status {times.returncode}: {run.stderr.strip()[-300:]}"
        raise BackendError(msg)
    if times.warmup_returncode:  # its output went to /dev/null, as hyperfine's warm-up's
        status = times.warmup_returncode
        msg = f"probe ready (the untimed warm-up launch) exited with status {status}"
        raise BackendError(msg)
    kv = parse_keyvalues(run.stdout)
    try:
        ready_ns = int(kv["ready_ns"])
    except (KeyError, ValueError) as exc:
        msg = f"unparseable probe output: {run.stdout[-300:]!r}"
        raise BackendError(msg) from exc
    if not times.start_realtime_ns <= ready_ns <= times.end_realtime_ns:
        msg = "the realtime clock moved during the measurement (ready outside launch..exit)"
        raise BackendError(msg)
    facts = {
        "kernel": kv.get("kernel", ""),
        "command": run.command,
        "timed_by": TIMED_BY,
        "warmup_total_s": f"{(times.warmup_ns or 0) / 1e9:.9f}",
    }
    return Outcome(
        [
            Measurement("startup.ready", (ready_ns - times.start_realtime_ns) / 1e9),
            Measurement("startup.total", times.total),
        ],
        facts,
    )


def memory_idle(
    launcher: ProcessLauncher, probe: str, workload: MemoryWorkload, timeout: float
) -> Outcome:
    """memory.environment: PSS summed over the idling probe's process tree; its peak.

    Natively the environment *is* the workload's process tree: the same definition as
    every other backend (:mod:`bench.workloads.hostmem`). The peak is the kernel's VmHWM
    read while the probe idles, after it has touched all its memory (the same VmHWM the
    probe itself prints as ``peak_rss``, kept as a cross-check fact). ``maxrss_rusage`` is
    not used: Linux carries ru_maxrss across execve(), so it would include whatever
    forked the probe.
    """
    deadline = time.monotonic() + timeout
    argv = [probe, "idle", str(int(workload.alloc)), f"{workload.idle:g}"]
    proc = launcher.spawn_merged(argv)
    try:
        head = read_until(proc, b"ready_ns=", deadline)
        environment = environment_memory(process_tree(proc.pid))
        hwm = vm_hwm(launcher.workload_pid(proc.pid))
    except BaseException:
        kill_tree(proc)
        raise
    rest, _ = launcher.communicate(proc, deadline - time.monotonic(), "probe idle", timeout)
    out = head + rest
    if proc.returncode != 0:
        msg = f"probe idle exited with status {proc.returncode}: {out.strip()[-300:]}"
        raise BackendError(msg)
    if hwm <= 0 or proc.pid not in environment.pids:
        msg = f"probe idle (pid {proc.pid}) exited before it could be measured"
        raise BackendError(msg)
    kv = parse_keyvalues(out)
    facts = {
        "kernel": kv.get("kernel", ""),
        **environment.facts(),
        "probe_peak_rss_bytes": kv.get("peak_rss", ""),
        "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
    }
    return Outcome(
        [
            Measurement("memory.environment", float(environment.pss)),
            Measurement("memory.workload_peak", float(hwm)),
        ],
        facts,
    )
