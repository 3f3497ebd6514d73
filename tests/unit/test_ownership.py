"""Owner tokens, the alive/dead rule, sweeps and scratch directories (bench.ownership), and the
one process-group kill (bench.procgroup), on literal data and real child processes."""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import ownership, procgroup
from bench.ownership import Leftover, Owner, Scope, Verdict, judge, sweep

HERE = Scope(host="aaaabbbbccccdddd", boot="0123456789ab", pidns="4026531836")


def token(
    host: str = HERE.host, boot: str = HERE.boot, pidns: str = HERE.pidns, pid: int = 4242
) -> str:
    return f"o1:{host}:{boot}:{pidns}:{pid}:777"


# -- tokens -----------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    owner = Owner(HERE.host, HERE.boot, HERE.pidns, 4242, "777")
    assert owner.token == token()
    assert Owner.parse(owner.token) == owner


@pytest.mark.parametrize(
    "text",
    [
        "1:1.00",  # the label: the old pid:create_time format
        "",
        "garbage",
        "o2:aaaabbbbccccdddd:0123456789ab:4026531836:4242:777",  # unknown version
        "o1:aaaabbbbccccdddd:0123456789ab:4026531836:pid:777",
        "o1:aaaabbbbccccdddd:0123456789ab:4026531836:4242:7.5",
        "o1::0123456789ab:4026531836:4242:777",  # empty host
        "o1:aaaabbbbccccdddd:0123456789ab:4026531836:4242:777:extra",
    ],
)
def test_tokens_isobench_does_not_write_are_rejected(text: str) -> None:
    assert Owner.parse(text) is None


def test_current_owner_is_this_process() -> None:
    owner = ownership.current()
    assert owner.pid == os.getpid()
    assert owner.start == procgroup.process_start(os.getpid())
    assert ownership.verdict(owner.token).state == "alive"


# -- the alive/dead rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "table", "state"),
    [
        (token(), {4242: "777"}, "alive"),
        (token(), {}, "dead"),  # the pid runs no more
        (token(), {4242: "778"}, "dead"),  # the pid was reused: another process
        (token(host="ffffeeeeddddcccc"), {4242: "777"}, "foreign"),  # another host
        (token(host="ffffeeeeddddcccc"), {}, "foreign"),  # even when the pid is free here
        (token(boot="ba5eba11ba5e"), {4242: "777"}, "dead"),  # rebooted since
        (token(pidns="4026532000"), {}, "foreign"),  # a harness in another container
        (None, {}, "unproven"),
        ("", {}, "unproven"),
        ("1:1.00", {1: "1"}, "unproven"),
    ],
)
def test_judge(text: str | None, table: dict[int, str], state: str) -> None:
    assert judge(text, HERE, table.get).state == state


def test_judge_says_why() -> None:
    assert "another process" in judge(token(), HERE, {4242: "1"}.get).reason
    assert "ffffeeeeddddcccc" in judge(token(host="ffffeeeeddddcccc"), HERE, {}.get).reason
    assert "no owner token" in judge(None, HERE, {}.get).reason


def test_a_real_reused_pid_does_not_protect_an_orphan() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        start = procgroup.process_start(child.pid)
        assert start is not None
        here = ownership.scope()
        alive = Owner(here.host, here.boot, here.pidns, child.pid, start).token
        reused = Owner(here.host, here.boot, here.pidns, child.pid, str(int(start) - 1)).token
        assert ownership.verdict(alive).state == "alive"
        assert ownership.verdict(reused).state == "dead"
    finally:
        child.kill()
        child.wait()
    assert ownership.verdict(alive).state == "dead"


# -- sweeping ---------------------------------------------------------------------------------


def test_sweep_removes_only_dead_owners() -> None:
    removed: list[str] = []

    def item(name: str, state: str) -> Leftover:
        return Leftover("thing", name, Verdict(state, state), lambda: removed.append(name))  # type: ignore[arg-type]

    def broken() -> None:
        raise OSError("busy")

    items = [
        item("live", "alive"),
        item("orphan", "dead"),
        item("other-host", "foreign"),
        item("no-token", "unproven"),
        Leftover("thing", "stuck", Verdict("dead", "dead"), broken),
    ]
    dry = sweep(items, apply=False)
    assert removed == []
    assert dry.removed == []
    assert dry.listed == ["thing other-host (foreign)", "thing no-token (unproven)"]
    result = sweep(items)
    assert removed == ["orphan"]
    assert result.removed == ["thing orphan (dead)"]
    assert result.failed == ["thing stuck (dead): busy"]
    notes = result.notes()
    assert any("removed" in n and "orphan" in n for n in notes)
    assert any("not provably ours" in n and "other-host" in n for n in notes)


def test_scratch_directories_follow_the_owner_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOBENCH_CACHE", str(tmp_path))
    mine = ownership.make_scratch("20260101-000000-abcd")
    assert mine.parent == tmp_path / "scratch"
    assert ownership.read_owner_file(mine) == ownership.current().token
    here = ownership.scope()
    dead = tmp_path / "scratch" / "dead-run"
    dead.mkdir()
    (dead / "fio.0.0").write_bytes(b"x" * 4096)
    dead_owner = Owner(here.host, here.boot, here.pidns, os.getpid(), "1")  # reused pid
    (dead / ownership.OWNER_FILE).write_text(dead_owner.token)
    unowned = tmp_path / "scratch" / "unowned"
    unowned.mkdir()
    foreign = tmp_path / "scratch" / "foreign"
    foreign.mkdir()
    (foreign / ownership.OWNER_FILE).write_text(token(host="ffffeeeeddddcccc"))

    states = {Path(i.name).name: i.verdict.state for i in ownership.scratch_leftovers()}
    assert states == {
        mine.name: "alive",
        "dead-run": "dead",
        "unowned": "unproven",
        "foreign": "foreign",
    }
    sweep(ownership.scratch_leftovers())
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == sorted(
        [mine.name, "unowned", "foreign"]
    )


# -- one process-group kill -------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def test_kill_tree_kills_the_whole_group() -> None:
    proc = procgroup.spawn(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    time.sleep(0.3)
    assert len(group_members(proc.pid)) == 3
    start = time.monotonic()
    procgroup.kill_tree(proc)
    assert time.monotonic() - start < 1.5  # SIGTERM ended it; no grace period spent
    assert proc.returncode == -signal.SIGTERM
    assert group_members(proc.pid) == []


def test_kill_tree_sigkills_what_ignores_sigterm() -> None:
    proc = procgroup.spawn(["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"])
    time.sleep(0.3)
    procgroup.kill_tree(proc, grace=0.3)
    assert proc.returncode == -signal.SIGKILL
    assert group_members(proc.pid) == []


def test_kill_tree_reaches_descendants_that_left_the_group() -> None:
    proc = procgroup.spawn(["sh", "-c", "setsid sleep 301 & wait"])
    (escaped,) = wait_for_child(proc.pid)
    assert os.getpgid(escaped.pid) != proc.pid  # its own session, out of the group
    procgroup.kill_tree(proc, grace=0.5)
    with contextlib.suppress(psutil.NoSuchProcess):
        assert escaped.status() == psutil.STATUS_ZOMBIE  # killed, init has not reaped it yet


def wait_for_child(pid: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = [c for c in psutil.Process(pid).children() if c.name() == "sleep"]
        if children and os.getpgid(children[0].pid) != pid:
            return children
        time.sleep(0.02)
    pytest.fail("the setsid child did not start")


def test_a_released_group_is_never_signalled() -> None:
    proc = procgroup.spawn(["true"])
    proc.wait()
    procgroup.release(proc)
    assert procgroup.REAPER.bound(proc.pid) is None
    procgroup.terminate_group(proc.pid, lambda: True)  # a no-op, even if the pid was reused


def test_the_reaper_ends_registered_trees_when_its_pipe_closes() -> None:
    victim = subprocess.Popen(["sleep", "302"], start_new_session=True)
    bound = procgroup.boot_ticks()
    fd = os.memfd_create("test-reaper")
    os.ftruncate(fd, 4096 * 16)
    table = mmap.mmap(fd, 4096 * 16)
    struct.pack_into("qq", table, 0, victim.pid, bound)
    struct.pack_into("qq", table, 16, 1, 0)  # pid 1 started after bound 0: not ours
    reaper = subprocess.Popen(
        [sys.executable, "-I", "-S", procgroup.__file__, "0.5", str(fd)],
        stdin=subprocess.PIPE,
        pass_fds=(fd,),
    )
    os.close(fd)
    assert reaper.stdin is not None
    time.sleep(0.3)
    assert victim.poll() is None  # registered, alive, untouched while we live
    reaper.stdin.close()  # what the kernel does when the harness dies
    assert reaper.wait(10) == 0
    assert victim.wait(5) == -signal.SIGTERM
