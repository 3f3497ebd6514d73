"""The start-up launcher's report, parsed on literal inputs (no process is started)."""

from __future__ import annotations

import errno
import signal
from importlib import resources

import pytest

from bench.backends.native.timed import LaunchTimes, parse_launch_report
from bench.values import BackendError

GOOD = (
    "start_realtime_ns=1795872681537959122\n"
    "start_monotonic_ns=22446269856585\n"
    "end_monotonic_ns=22446270533526\n"
    "end_realtime_ns=1795872681538636215\n"
    "wait_status={status}\n"
)


def parse(report: str, exit_status: int | None = 0, stderr: str = "") -> LaunchTimes:
    return parse_launch_report(report, "/p/probe", exit_status, stderr)


def test_a_full_report_gives_both_clocks_and_the_interval() -> None:
    times = parse(GOOD.format(status=0))
    assert times.start_realtime_ns == 1795872681537959122
    assert times.end_realtime_ns == 1795872681538636215
    assert times.total == pytest.approx((22446270533526 - 22446269856585) / 1e9)
    assert times.returncode == 0


def test_a_warm_up_run_is_reported_apart() -> None:
    times = parse("warmup_ns=412000\nwarmup_wait_status=256\n" + GOOD.format(status=0))
    assert (times.warmup_ns, times.warmup_returncode, times.returncode) == (412000, 1, 0)
    assert parse(GOOD.format(status=0)).warmup_ns is None


@pytest.mark.parametrize(
    ("status", "returncode"),
    [(3 << 8, 3), (255 << 8, 255), (signal.SIGKILL, -9), (signal.SIGTERM | 0x80, -15)],
)
def test_the_wait_status_reads_as_popen_returncode(status: int, returncode: int) -> None:
    assert parse(GOOD.format(status=status)).returncode == returncode


def test_a_program_that_cannot_start_is_named_with_the_reason() -> None:
    with pytest.raises(BackendError, match=r"cannot run '/p/probe': No such file or directory"):
        parse(f"spawn_errno={errno.ENOENT}\n", exit_status=127)


@pytest.mark.parametrize(
    "report",
    [
        "",  # the launcher died before reporting
        GOOD.format(status=0).replace("end_monotonic_ns", "end_monotonic"),
        GOOD.format(status="x"),
        GOOD.format(status=0x7F | (19 << 8)),  # "stopped": not an end
    ],
)
def test_an_unusable_report_says_what_came_back(report: str) -> None:
    with pytest.raises(BackendError) as caught:
        parse(report, exit_status=2, stderr="isobench-launch: report descriptor 9: Bad file")
    text = str(caught.value)
    assert "no usable report for '/p/probe'" in text
    assert "exit status 2" in text
    assert "Bad file" in text  # the launcher's own complaint reaches the user


def test_an_end_before_the_start_is_refused() -> None:
    report = GOOD.format(status=0).replace("22446270533526", "22446269856584")
    with pytest.raises(BackendError, match="end before its start"):
        parse(report)


def test_the_launcher_source_ships_with_the_package() -> None:
    source = resources.files("bench.backends.native").joinpath("launch.c").read_text()
    assert "posix_spawnp" in source
    keys = ("start_realtime_ns", "start_monotonic_ns", "end_monotonic_ns", "wait_status")
    for key in (*keys, "warmup_ns", "warmup_wait_status"):
        assert f"{key}=" in source  # the keys parse_launch_report reads
