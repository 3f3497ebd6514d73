"""Where the harness keeps built artifacts (probe binary, rootfs, image tarballs, boxes)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``$ISOBENCH_CACHE``, else /var/cache/isobench as root, else ~/.cache/isobench."""
    env = os.environ.get("ISOBENCH_CACHE")
    if env:
        path = Path(env)
    elif os.geteuid() == 0:
        path = Path("/var/cache/isobench")
    else:
        path = Path.home() / ".cache" / "isobench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def scenarios_dir() -> Path:
    """The default scenario directory (``scenarios/`` of the checkout, or cwd's)."""
    local = Path.cwd() / "scenarios"
    return local if local.is_dir() else REPO_ROOT / "scenarios"


def results_dir() -> Path:
    """The default results directory (``results/`` under the current directory)."""
    return Path.cwd() / "results"
