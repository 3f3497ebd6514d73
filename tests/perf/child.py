"""One way to time a fresh `python -m bench ...` process: wall time, CPU and peak RSS (wait4)."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def measure(*args: str) -> dict[str, float]:
    """Run ``python -m bench ARGS`` to completion; its wall time, CPU seconds and peak RSS."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must know
    assert child.returncode == 0, f"bench {' '.join(args)} exited {child.returncode}"
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024.0,
    }
