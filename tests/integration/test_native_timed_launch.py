"""The start-up launcher (isobench-launch) for real: its interval, output, status and kill.

No test here times the harness's own speed: the bounds only check that the launcher's
interval holds the child's whole run (a child that sleeps 50 ms reads at least 50 ms) and
nothing absurd besides.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.backends.native import NativeBackend
from bench.backends.native.measure import TIMED_BY
from bench.backends.sandbox import SandboxBackend
from bench.values import BackendError, RepetitionTimeout, Variant
from bench.workloads import GUEST_PROBE
from tests.engines import skip_or_fail
from tests.integration.helpers import (
    available,
    interrupt_with_sigint,
    run_once,
    scenario,
    values,
)

pytestmark = pytest.mark.integration

SLEEP = 0.05
#: Generous: a loaded 2-core host may delay a launch, never by anything near this.
SLACK = 2.0


@pytest.fixture(autouse=True)
def _needs_compiler() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        skip_or_fail("no C compiler to build the launcher")


@pytest.fixture
def native() -> Iterator[NativeBackend]:
    yield from available(NativeBackend())


@pytest.fixture
def sandbox() -> Iterator[SandboxBackend]:
    yield from available(SandboxBackend())


def test_the_interval_holds_the_childs_whole_run(native: NativeBackend) -> None:
    run = native.run_timed(["sleep", f"{SLEEP}"], 30, "sleep")
    assert SLEEP <= run.times.total < SLEEP + SLACK
    wall = (run.times.end_realtime_ns - run.times.start_realtime_ns) / 1e9
    assert SLEEP <= wall < SLEEP + SLACK  # the realtime pair brackets the run too
    assert run.times.returncode == 0
    assert run.times.warmup_ns is None  # none asked for
    assert run.command == f"sleep {SLEEP}"


def test_warmups_run_before_and_stay_out_of_the_interval(native: NativeBackend) -> None:
    run = native.run_timed(["sh", "-c", f"echo run; sleep {SLEEP}"], 30, "sh", warmups=2)
    assert run.stdout == "run\n"  # the warm-ups' output is discarded, as hyperfine's
    assert run.times.warmup_ns is not None
    assert SLEEP <= run.times.warmup_ns / 1e9 < SLEEP + SLACK
    assert SLEEP <= run.times.total < SLEEP + SLACK  # one run, not three


def test_output_and_status_come_back_apart(native: NativeBackend) -> None:
    script = "echo out; echo err >&2; exit 3"
    run = native.run_timed(["sh", "-c", script], 30, "sh")
    assert (run.stdout, run.stderr, run.times.returncode) == ("out\n", "err\n", 3)
    killed = native.run_timed(["sh", "-c", "kill -TERM $$"], 30, "sh")
    assert killed.times.returncode == -15


def test_a_missing_program_is_named(native: NativeBackend) -> None:
    with pytest.raises(BackendError, match="cannot run '/nonexistent/prog': No such file"):
        native.run_timed(["/nonexistent/prog"], 30, "prog")


def sleepers(duration: str) -> list[psutil.Process]:
    """Processes whose argv ends ``sleep DURATION``: the sleep and the launcher above it."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and p.info["cmdline"][-2:] == ["sleep", duration]
    ]


def test_a_timeout_kills_launcher_and_child(native: NativeBackend) -> None:
    # An unusual duration, so that no unrelated `sleep` on the host is mistaken for ours.
    started = time.monotonic()
    with pytest.raises(RepetitionTimeout, match=r"within the 0\.3 s timeout"):
        native.run_timed(["sleep", "2718.28"], 0.3, "sleep")
    assert time.monotonic() - started < 10
    assert sleepers("2718.28") == []


def test_ctrl_c_kills_launcher_and_child(native: NativeBackend) -> None:
    interrupt_with_sigint(
        lambda: native.run_timed(["sleep", "2718.29"], 60, "sleep"), after=0.5, cleanup=lambda: None
    )
    assert sleepers("2718.29") == []


def test_startup_samples_name_their_command_and_clock(
    native: NativeBackend, tmp_path: Path
) -> None:
    sc = scenario({"kind": "startup"})
    outcome = run_once(native, sc, Variant("host", {}), tmp_path)
    got = values(outcome)
    assert 0 < got["startup.ready"] <= got["startup.total"] < 5
    assert outcome.facts["command"].endswith(" ready")
    assert outcome.facts["command"].split()[0] == str(native._probe)
    assert outcome.facts["timed_by"] == TIMED_BY
    assert 0 < float(outcome.facts["warmup_total_s"]) < 5  # the untimed launch before it


@pytest.mark.sandbox
def test_the_sandbox_interval_holds_bwrap_and_its_child(
    sandbox: SandboxBackend, tmp_path: Path
) -> None:
    rung = Variant.of(layers="namespaces")
    outcome = run_once(sandbox, scenario({"kind": "startup"}), rung, tmp_path)
    assert outcome.facts["command"].startswith(f"{sandbox._bwrap} --unshare-all")
    assert outcome.facts["command"].endswith(f"-- {GUEST_PROBE} ready")
    run = sandbox.run_timed(["/bin/sleep", f"{SLEEP}"], 30, "sleep")  # inside the sandbox
    assert SLEEP <= run.times.total < SLEEP + SLACK
    assert run.times.returncode == 0
