"""Where the native disk workload writes, and whether that is the filesystem Docker writes to.

A comparison of disk numbers is only fair when every backend's test file lives on the same
host filesystem: by default native (as root) writes beside /var/lib/docker and
/var/lib/libvirt/images, and each disk row records the filesystem it used (a fact, with a
warning when it is not Docker's data root's).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bench.ownership import make_owned_dir
from bench.paths import cache_dir
from bench.sysinfo import filesystem_facts
from bench.workloads import disk_placement

#: Docker's data root unless /etc/docker/daemon.json sets ``data-root``.
DOCKER_DATA_ROOT: Final = Path("/var/lib/docker")
#: Native's disk test directory (as root): beside /var/lib/docker and /var/lib/libvirt/images,
#: so on a default install every backend's test file is on the same host filesystem.
NATIVE_DISK_DIR: Final = Path("/var/lib/isobench/disk")


def disk_directory() -> Path:
    """``$ISOBENCH_DISK_DIR``, else /var/lib/isobench/disk as root, else the cache's disk/."""
    configured = os.environ.get("ISOBENCH_DISK_DIR")
    if configured:
        return Path(configured)
    return NATIVE_DISK_DIR if os.geteuid() == 0 else cache_dir() / "disk"


def docker_data_root(config: Path = Path("/etc/docker/daemon.json")) -> Path:
    """Docker's data root as configured for dockerd (its default when not set)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        configured = json.loads(config.read_text(encoding="utf-8")).get("data-root")
        if configured:
            return Path(str(configured))
    return DOCKER_DATA_ROOT


def native_placement(directory: Path) -> dict[str, str]:
    """Where the test file lived, and whether that is Docker's data-root filesystem."""
    facts = disk_placement(directory)
    root = docker_data_root()
    if root.is_dir():
        same = filesystem_facts(root)["fs_dev"] == facts["disk_host_fs_dev"]
        facts["disk_same_fs_as_docker_data_root"] = "yes" if same else "no"
        if not same:
            facts["warning"] = (
                f"native disk test file is on {facts['disk_host_fs_source']} "
                f"({facts['disk_host_fs_dev']}), not on the filesystem of Docker's data root "
                f"{root}: set ISOBENCH_DISK_DIR to a directory there to compare like with like"
            )
    return facts


@contextlib.contextmanager
def storage_dir(tag: str) -> Iterator[Path]:
    """A private directory on the host filesystem the other backends write to."""
    directory = disk_directory() / f"native-{os.getpid()}-{tag}"
    shutil.rmtree(directory, ignore_errors=True)
    make_owned_dir(directory)  # a killed harness leaves it to the next run's sweep
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
