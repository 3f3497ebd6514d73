"""Crash consistency of a real native run: kill -9, SIGTERM and SIGINT at several moments.

Each case runs ``isobench run`` (a native command scenario of short sleeps) in a child process,
stops it, and checks what a user then sees: the run is visibly incomplete (no end marker, or an
``interrupted`` one), ``isobench report`` consolidates it from its journal and shows a banner,
``isobench compare`` refuses it with exit 2 unless ``--allow-incomplete``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.results import create_run_dir
from tests.faults import runs

pytestmark = pytest.mark.fault

REPEAT = 12


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run of the same scenario (the hash ignores ``repeat``), for compare."""
    if shutil.which("sleep") is None:
        pytest.skip("no sleep(1)")
    where = tmp_path_factory.mktemp("base")
    child = runs.isobench(
        ["run", str(runs.scenario(where, repeat=3)), "-b", "native", "--out", str(where / "r")],
        where / "log",
    )
    assert child.proc.returncode == 0, child.stderr
    run = runs.only_run(where / "r")
    assert run is not None
    assert json.loads((run / "end.json").read_text())["state"] == "complete"
    return run


def _compare(base: Path, run: Path, out: Path, *extra: str) -> runs.Child:
    return runs.isobench(["compare", str(base), str(run), *extra], out)


def _report(run: Path, out: Path) -> tuple[runs.Child, str]:
    html = out / "report.html"
    child = runs.isobench(["report", str(run), "-o", str(html)], out)
    runs.no_traceback(child.stderr)
    assert child.proc.returncode == 0, child.stderr
    return child, html.read_text(encoding="utf-8")


def _stop_after(tmp_path: Path, samples: int, sig: signal.Signals) -> tuple[runs.Child, Path]:
    """Start a run, wait for ``samples`` journal lines, send ``sig``; return child and run."""
    results = tmp_path / "results"
    child = runs.start_run(runs.scenario(tmp_path, REPEAT), results, tmp_path / "log")

    def ready() -> bool:
        run = runs.only_run(results)
        return (
            run is not None
            and (run / "environment.json").exists()
            and runs.journal_lines(run) >= samples
        )

    runs.wait_for(ready, what=f"{samples} samples")
    runs.kill(child, sig)
    child.wait()
    run = runs.only_run(results)
    assert run is not None
    return child, run


def _compared_anyway(allowed: runs.Child) -> None:
    """--allow-incomplete lifts the refusal: the gate runs (and may find nothing to gate).

    These runs hold fewer than 5 samples per series, where the gate forms no interval; then
    it exits 2 saying so, which is not the incomplete-run refusal.
    """
    assert "not complete: refusing" not in allowed.stderr
    if allowed.proc.returncode == 2:
        assert "no gateable metric" in allowed.stderr, allowed.stderr
    else:
        assert allowed.proc.returncode in (0, 1), allowed.stderr


@pytest.mark.parametrize("samples", [0, 2, 9], ids=["before-first-sample", "early", "late"])
def test_kill_9_leaves_a_visibly_unfinished_run_that_report_consolidates(
    tmp_path: Path, base_run: Path, samples: int, fault_row: Callable[..., None]
) -> None:
    child, run = _stop_after(tmp_path, samples, signal.SIGKILL)
    assert child.proc.returncode == -signal.SIGKILL
    leftovers = runs.reap_orphans()
    scratch = (run / "work").is_dir()
    assert not (run / "end.json").exists()
    kept = runs.journal_is_whole(run)
    assert kept >= samples
    assert json.loads((run / "environment.json").read_text())["finished"] is None

    refused = _compare(base_run, run, tmp_path / "cmp")
    assert refused.proc.returncode == 2, refused.stderr
    assert "is unfinished, not complete: refusing" in refused.stderr
    report, html = _report(run, tmp_path / "rep")
    assert "incomplete run: it did not finish (no end.json" in report.stderr
    assert f"consolidated {kept} samples from samples.jsonl into samples.parquet" in report.stderr
    assert "incomplete run: it did not finish" in html  # the banner
    marker = json.loads((run / "end.json").read_text())
    assert (marker["state"], marker["samples"]) == ("recovered", kept)
    assert (run / "samples.parquet").exists()
    assert not (run / "work").exists()  # the dead harness's scratch space went with it
    again = _compare(base_run, run, tmp_path / "cmp2")
    assert again.proc.returncode == 2  # recovered is still not complete
    assert "is recovered, not complete" in again.stderr
    allowed = _compare(base_run, run, tmp_path / "cmp3", "--allow-incomplete")
    runs.no_traceback(allowed.stderr)
    _compared_anyway(allowed)

    moment = {0: "before the first sample", 2: "after 2 samples", 9: "after 9 samples"}[samples]
    scratch_note = "; work/ scratch removed at consolidation" if scratch else ""
    fault_row(
        case=f"kill -9 of a native run {moment}",
        outcome="no end.json: compare exit 2; report consolidates (recovered), banner; "
        "compare still exit 2 (--allow-incomplete compares)",
        data_kept=f"{kept} of {REPEAT} samples (journal whole, then Parquet)",
        leftovers=leftovers + scratch_note,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_ends_it_interrupted(
    tmp_path: Path, base_run: Path, sig: signal.Signals, fault_row: Callable[..., None]
) -> None:
    child, run = _stop_after(tmp_path, 3, sig)
    runs.no_traceback(child.stderr)
    assert child.proc.returncode == 130, child.stderr
    leftovers = runs.reap_orphans()
    marker = json.loads((run / "end.json").read_text())
    assert marker["state"] == "interrupted"
    kept = runs.journal_is_whole(run)
    assert marker["samples"] == kept
    assert not (run / "work").exists()
    refused = _compare(base_run, run, tmp_path / "cmp")
    assert refused.proc.returncode == 2
    assert "is interrupted, not complete: refusing" in refused.stderr
    allowed = _compare(base_run, run, tmp_path / "cmp2", "--allow-incomplete")
    _compared_anyway(allowed)
    _, html = _report(run, tmp_path / "rep")
    assert "the run was interrupted" in html
    fault_row(
        case=f"{sig.name} mid-run (native)",
        outcome="exit 130, end.json state interrupted, Parquet written; report banner; "
        "compare exit 2 unless --allow-incomplete",
        data_kept=f"{kept} of {REPEAT} samples",
        leftovers=leftovers,
    )


@pytest.mark.parametrize("delay", [0.2, 0.8, 2.0, -1.0], ids=["0.2s", "0.8s", "2s", "at-mkdir"])
def test_sigterm_in_the_first_seconds(
    tmp_path: Path, delay: float, fault_row: Callable[..., None]
) -> None:
    results = tmp_path / "results"
    child = runs.start_run(runs.scenario(tmp_path, REPEAT), results, tmp_path / "log")
    if delay >= 0:
        time.sleep(delay)
    else:  # the moment the run directory appears
        runs.wait_for(lambda: runs.only_run(results) is not None, what="the run directory")
    runs.kill(child, signal.SIGTERM)
    status = child.wait()
    runs.no_traceback(child.stderr)
    assert status in (130, -signal.SIGTERM), child.stderr
    run = runs.only_run(results)
    if run is None:
        state, kept = "no run directory (stopped before it was created)", "nothing to keep"
    else:  # the handlers were in place before the directory existed
        marker = json.loads((run / "end.json").read_text())
        assert marker["state"] == "interrupted"
        state = "end.json state interrupted"
        kept = f"{runs.journal_is_whole(run)} samples"
    leftovers = runs.reap_orphans()
    moment = "as the run directory appears" if delay < 0 else f"{delay:g} s after start"
    fault_row(
        case=f"SIGTERM {moment}",
        outcome=f"exit {status}, no traceback; {state}",
        data_kept=kept,
        leftovers=leftovers,
    )


def test_run_id_collisions_never_merge_two_runs(
    tmp_path: Path, fault_row: Callable[..., None]
) -> None:
    """Twenty threads all draw the same id first: each still gets a directory of its own."""
    made: list[tuple[str, Path]] = []
    fresh = itertools.count(1)
    local = threading.local()
    start = threading.Barrier(20)

    def same_id_first() -> str:
        if not getattr(local, "drawn", False):
            local.drawn = True
            return "20261128T000000Z-0000"
        return f"20261128T000000Z-{next(fresh):04x}"

    def create() -> None:
        start.wait()
        made.append(create_run_dir(tmp_path, make_id=same_id_first))

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paths = [path for _, path in made]
    assert len(set(paths)) == 20
    assert all(path.is_dir() and not any(path.iterdir()) for path in paths)
    fault_row(
        case="run id collision (20 runs draw the same id at once)",
        outcome="exclusive mkdir: 1 run got the id, 19 retried with a new one",
        data_kept="20 separate run directories",
    )
