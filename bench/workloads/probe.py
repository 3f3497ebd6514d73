"""The static probe binary (probe.c): its source, content hash, build and guest path."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Final

from bench.values import BackendError

#: Path of the probe inside images and boxes built by ``isobench env build``.
GUEST_PROBE: Final = "/opt/isobench/bin/isobench-probe"


class ProbeBuildError(BackendError):
    """The static probe cannot be built (no compiler or no static libc)."""


def probe_source() -> bytes:
    """Source of the probe binary."""
    return resources.files("bench.workloads").joinpath("probe.c").read_bytes()


def probe_hash() -> str:
    """Content hash of the probe source (12 hex digits)."""
    return hashlib.sha256(probe_source()).hexdigest()[:12]


def build_probe(cache: Path) -> Path:
    """Build the static probe into ``cache`` (reused while the source is unchanged)."""
    target = cache / f"isobench-probe-{probe_hash()}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        msg = (
            "no C compiler found to build the static syscall probe "
            "(apt-get install gcc libc6-dev); refusing to fall back to an interpreted loop"
        )
        raise ProbeBuildError(msg)
    src = cache / f"probe-{probe_hash()}.c"
    src.write_bytes(probe_source())
    tmp = target.with_suffix(".tmp")
    proc = subprocess.run(
        [compiler, "-O2", "-static", "-o", str(tmp), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"building the static probe failed ({compiler}): {proc.stderr.strip()[-500:]}"
        raise ProbeBuildError(msg)
    tmp.replace(target)
    return target
