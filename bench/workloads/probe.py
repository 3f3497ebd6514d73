"""The static probe binary (probe.c): its source, content hash, build and guest path.

:func:`build_static` is the one way host-side C helpers are compiled and cached.
"""

from __future__ import annotations

import hashlib
import os
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
    return build_static(cache, "isobench-probe", probe_source(), "the static syscall probe")


def build_static(cache: Path, stem: str, source: bytes, what: str) -> Path:
    """Compile C ``source`` statically to ``cache/STEM-HASH`` (HASH: of the source), once.

    The one build mechanism for the host-side binaries (the probe, the native launcher):
    a changed source gets a new name, an unchanged one is reused as is.
    """
    digest = hashlib.sha256(source).hexdigest()[:12]
    target = cache / f"{stem}-{digest}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        msg = (
            f"no C compiler found to build {what} (apt-get install gcc libc6-dev); "
            "refusing to fall back to an interpreted substitute"
        )
        raise ProbeBuildError(msg)
    src = cache / f"{stem}-{digest}.c"
    src.write_bytes(source)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # concurrent builders
    proc = subprocess.run(
        [compiler, "-O2", "-static", "-o", str(tmp), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"building {what} failed ({compiler}): {proc.stderr.strip()[-500:]}"
        raise ProbeBuildError(msg)
    tmp.replace(target)
    return target
