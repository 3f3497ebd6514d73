"""Teardown's one rule for Podman's helpers: a conmon naming one of this run's containers dies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil

from bench.backends.docker.support import Ownership
from bench.backends.podman.service import kill_leftover_helpers


def _fake_conmon(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A process whose name is ``conmon`` and whose argv names a container, as Podman's does."""
    script = tmp_path / "conmon"
    if not script.exists():
        script.write_text("#!/bin/sh\nsleep 60\n")
        script.chmod(0o755)
    return subprocess.Popen([str(script), "--api-version", "1", "-c", "abc", "-n", name])


def test_conmons_of_this_runs_containers_die_even_when_the_container_is_gone(
    tmp_path: Path,
) -> None:
    mine, other = Ownership(), Ownership()
    ours = _fake_conmon(tmp_path, mine.name("density-0"))  # its container was removed already
    theirs = _fake_conmon(tmp_path, other.name("density-0"))  # another harness's run
    try:
        for proc in (ours, theirs):
            assert psutil.Process(proc.pid).name() == "conmon"
        assert kill_leftover_helpers(mine.name_prefix, None) == 1
        assert ours.poll() is not None  # killed and reaped (by psutil.wait_procs)
        assert theirs.poll() is None
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()
