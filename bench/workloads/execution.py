"""What every workload runs through: an :data:`Executor` and its :class:`ExecResult`.

Each backend supplies the executor (run an argv inside the environment, return exit
code/stdout/stderr); the workloads parse what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.values import BackendError


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Result of running one argv inside an environment."""

    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds, as measured by the executor on the host


#: Run ``argv`` inside the environment with a timeout (seconds); raise RepetitionTimeout.
Executor = Callable[[Sequence[str], float], ExecResult]


def parse_keyvalues(text: str) -> dict[str, str]:
    """Parse the probe's ``key=value`` lines (later keys win)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def check_exit(result: ExecResult, what: str) -> None:
    """Raise :class:`BackendError` naming ``what`` and its output tail if it failed."""
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-400:]
        msg = f"{what} exited with status {result.returncode}: {tail}"
        raise BackendError(msg)
