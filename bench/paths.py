"""Where the harness keeps built artifacts (probe binary, rootfs, image tarballs, boxes)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def resource(name: str) -> Path:
    """A file shipped with the package: ``Vagrantfile``, ``scripts/provision``, ...

    In a checkout, ``bench/resources/`` holds symlinks to the top-level files (the ones a
    reader sees and edits); an installed wheel holds copies of them. Either way this is a
    real path on disk (Vagrant and bash need one). FileNotFoundError names what is missing.
    """
    path = Path(str(resources.files("bench") / "resources" / name))
    if not path.exists():
        msg = f"{name} is not part of this isobench installation (looked in {path.parent})"
        raise FileNotFoundError(msg)
    return path


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
    """The default scenario directory: ``scenarios/`` under the current directory, only."""

    return Path.cwd() / "scenarios"


def results_dir() -> Path:
    """The default results directory (``results/`` under the current directory)."""
    return Path.cwd() / "results"
