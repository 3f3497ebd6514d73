"""The watchdog that bounds every python-vagrant call, on real child processes (no vagrant).

python-vagrant runs ``subprocess.check_call(..., cwd=root)``; these tests run the same call with
``sleep`` standing in for a hung ``vagrant``, so the kill path is exercised for real.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from bench.backends.vagrant.cli import VagrantError, kill_children_in, watched
from bench.values import RepetitionTimeout


def children_in(cwd: Path) -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if Path(child.cwd()) == cwd and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.Error:
            continue
    return out


def test_a_hung_call_is_killed_with_its_children(tmp_path):
    # A shell with a grandchild: the whole tree must go, not just the direct child.
    def call() -> None:
        subprocess.check_call(["sh", "-c", "sleep 60 & sleep 60; wait"], cwd=tmp_path)

    start = time.monotonic()
    with pytest.raises(RepetitionTimeout, match=r"`vagrant up` did not finish within 0.5 s"):
        watched(call, what="up", cwd=tmp_path, timeout=0.5, log=tmp_path / "log")
    assert time.monotonic() - start < 10
    assert children_in(tmp_path) == []


def test_a_call_that_spawns_after_the_deadline_is_still_killed(tmp_path):
    def call() -> None:
        time.sleep(0.3)  # the deadline passes before the process exists
        subprocess.check_call(["sleep", "60"], cwd=tmp_path)

    with pytest.raises(RepetitionTimeout):
        watched(call, what="status", cwd=tmp_path, timeout=0.01, log=tmp_path / "log")
    assert children_in(tmp_path) == []


def test_a_failing_call_reports_the_log_tail(tmp_path):
    log = tmp_path / "vagrant.log"
    log.write_text("Progress: 10%\rProgress: 20%\nThe box 'x' could not be found.\n")

    def call() -> None:
        subprocess.check_call(["false"], cwd=tmp_path)

    with pytest.raises(VagrantError, match=r"(?s)exit 1.*could not be found") as info:
        watched(call, what="up", cwd=tmp_path, timeout=30, log=log)
    assert "Progress" not in str(info.value)


def test_a_call_within_its_timeout_returns_its_value(tmp_path):
    def call() -> bytes:
        return subprocess.check_output(["echo", "ok"], cwd=tmp_path)

    assert watched(call, what="status", cwd=tmp_path, timeout=30, log=tmp_path / "log") == b"ok\n"


def test_kill_children_in_leaves_other_directories_alone(tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    procs = [subprocess.Popen(["sleep", "60"], cwd=d) for d in (mine, other)]
    try:
        time.sleep(0.1)
        assert kill_children_in(mine) == 1
        assert procs[0].wait(5) == -9
        assert procs[1].poll() is None
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
