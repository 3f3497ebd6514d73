"""Clean stops on I/O errors and defensive reading of corrupt result files.

Writing: a full disk (a small tmpfs mounted and unmounted here), a read-only or immutable
``--out``, ``--out`` naming a file, names too long for the file system. Each ends with one
line naming the path and the cause, exit status 1, no traceback, the journal whole up to the
last sample and no end marker. Reading: corrupt files give one line naming the file (and
line), exit status 2; a bad Parquet falls back to the intact journal.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from tests.faults import runs

pytestmark = pytest.mark.fault


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the block (root only)."""
    where.mkdir(parents=True, exist_ok=True)
    argv = ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(where)]
    if os.geteuid() != 0 or subprocess.run(argv, check=False).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system of ``directory``, then give back ``leave`` bytes."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as fh:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
        fh.truncate(max(0, filler.stat().st_size - leave))
    return filler


def one_line(text: str) -> str:
    """The harness's last stderr line; the error must fit in it (no traceback above)."""
    runs.no_traceback(text)
    return text.strip().splitlines()[-1]


def _run(tmp_path: Path, out: Path, name: str = "sleepy", repeat: int = 4) -> runs.Child:
    scenario = runs.scenario(tmp_path / "scenario", repeat, name)
    return runs.isobench(["run", str(scenario), "-b", "native", "--out", str(out), "--plain"],
                         tmp_path / "log")  # fmt: skip


def test_disk_fills_up_mid_run(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        scenario = runs.scenario(tmp_path / "scenario", repeat=20)
        results = disk / "results"
        child = runs.start_run(scenario, results, tmp_path / "log")
        runs.wait_for(lambda: runs.journal_lines(runs.only_run(results)) >= 2, what="2 samples")
        filler = fill(disk)
        status = child.wait()
        line = one_line(child.stderr)
        assert status == 1, child.stderr
        run = runs.only_run(results)
        assert run is not None
        assert line.startswith(f"isobench run: cannot write {run}/")
        assert "No space left on device; the run stopped after" in line
        assert not (run / "end.json").exists()
        kept = runs.journal_is_whole(run)
        assert kept >= 2
        assert json.loads((run / "environment.json").read_text())["finished"] is None
        filler.unlink()  # space again: report finishes the run from its journal
        report = runs.isobench(["report", str(run), "-o", str(tmp_path / "r.html")], tmp_path)
        assert report.proc.returncode == 0, report.stderr
        assert f"consolidated {kept} samples" in report.stderr
        leftovers = runs.reap_orphans()
    fault_row(
        case="disk full mid-run (tmpfs filled after 2 samples)",
        outcome=f"exit 1, one line: {line.split(';')[0].replace(str(run), 'RUN')}; no end.json; "
        "report consolidates it later",
        data_kept=f"{kept} samples, journal whole",
        leftovers=leftovers,
    )


def test_disk_nearly_full_from_the_start(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        results = disk / "results"
        results.mkdir()
        fill(disk, leave=12 * 1024)
        child = _run(tmp_path, results)
        line = one_line(child.stderr)
        assert child.proc.returncode == 1, child.stderr
        assert "No space left on device" in line
        assert line.startswith(f"isobench run: cannot write {results}/")
        run = runs.only_run(results)
        kept = "nothing (no run directory)"
        if run is not None:
            assert not (run / "end.json").exists()
            kept = f"{runs.journal_is_whole(run)} samples, journal whole"
    fault_row(
        case="disk with 12 KiB free at the start (64 KiB tmpfs)",
        outcome="exit 1, one line naming the file and 'No space left on device'; no end.json",
        data_kept=kept,
        leftovers=runs.reap_orphans(),
    )


def test_read_only_out(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    with tmpfs(tmp_path / "ro", "64k", "ro") as read_only:
        child = _run(tmp_path, read_only)
        line = one_line(child.stderr)
        nested = _run(tmp_path / "nested", read_only / "sub")
        nested_line = one_line(nested.stderr)
        assert not any(read_only.iterdir())
    assert child.proc.returncode == nested.proc.returncode == 1
    assert line.startswith(f"isobench run: cannot create {read_only}/")
    assert line.endswith("Read-only file system; nothing was run")
    assert nested_line == (
        f"isobench run: cannot create {read_only}/sub: Read-only file system; nothing was run"
    )
    fault_row(
        case="read-only --out (ro tmpfs)",
        outcome="exit 1: 'cannot create OUT/RUN-ID: Read-only file system; nothing was run'",
        data_kept="nothing to keep (no run started)",
    )


def test_immutable_out(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    out = tmp_path / "frozen"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], check=False).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        child = _run(tmp_path, out)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    line = one_line(child.stderr)
    assert child.proc.returncode == 1
    assert line.startswith(f"isobench run: cannot create {out}/")
    assert line.endswith("Operation not permitted; nothing was run")
    assert not any(out.iterdir())
    fault_row(
        case="immutable --out (chattr +i)",
        outcome="exit 1: 'cannot create OUT/RUN-ID: Operation not permitted'",
        data_kept="nothing to keep (no run started)",
    )


def test_out_naming_a_file(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me\n")
    child = _run(tmp_path, target)
    line = one_line(child.stderr)
    assert child.proc.returncode == 1
    assert line == (
        f"isobench run: cannot use {target}: it exists and is not a directory; nothing was run"
    )
    assert target.read_text() == "keep me\n"
    fault_row(
        case="--out naming a file",
        outcome="exit 1: 'cannot use OUT: it exists and is not a directory'",
        data_kept="the file is untouched",
    )


def test_out_name_too_long(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    out = tmp_path / ("x" * 300)
    child = _run(tmp_path, out)
    line = one_line(child.stderr)
    assert child.proc.returncode == 1
    assert line == f"isobench run: cannot create {out}: {os.strerror(errno.ENAMETOOLONG)}; " + (
        "nothing was run"
    )
    fault_row(
        case="--out with a 300-byte file name",
        outcome="exit 1: 'cannot create OUT: File name too long'",
        data_kept="nothing to keep (no run started)",
    )


def test_a_valid_scenario_name_of_100_emoji(tmp_path: Path, fault_row: Callable[..., None]) -> None:
    """400 bytes of UTF-8, longer than a file name may be: no file is named after it."""
    name = "\U0001f40d" * 100
    child = _run(tmp_path, tmp_path / "results", name=name, repeat=2)
    runs.no_traceback(child.stderr)
    if child.proc.returncode == 1:  # a validator that bounds names in bytes refuses it up front
        assert "invalid scenario file" in child.stderr
        assert runs.only_run(tmp_path / "results") is None
        outcome, kept = "refused by validation (exit 1, file and field named)", "nothing to keep"
    else:
        assert child.proc.returncode == 0, child.stderr
        run = runs.only_run(tmp_path / "results")
        assert run is not None
        assert json.loads((run / "end.json").read_text())["state"] == "complete"
        frame = pd.read_parquet(run / "samples.parquet")
        assert set(frame["scenario"]) == {name}
        outcome, kept = "runs to completion (no path is built from the name)", f"{len(frame)} rows"
    fault_row(case="valid scenario named with 100 emoji (400 bytes)", outcome=outcome,
              data_kept=kept, leftovers=runs.reap_orphans())  # fmt: skip


# -- reading corrupt result files --------------------------------------------------------

LINE = (
    '{"run_id":"r1","scenario":"s","scenario_hash":"h","backend":"native","variant":"host",'
    '"metric":"startup.total","unit":"s","repetition":REP,"warmup":WARM,"value":1.5,'
    '"status":"ok","reason":"","timestamp":"2026-01-01T00:00:00+00:00"}\n'
)
ENV = '{"schema_version": 2, "run_id": "r1", "host": {"hostname": "h"}}'
END = '{"schema_version": 2, "run_id": "r1", "state": "complete"}'


def _journal(*warmups: str) -> str:
    return "".join(LINE.replace("REP", str(n)).replace("WARM", w) for n, w in enumerate(warmups))


CORRUPT = {
    "environment.json holding a list": ({"environment.json": "[1, 2]"}, "environment.json"),
    "journal line that is a JSON array": (
        {"samples.jsonl": _journal("false") + "[1, 2]\n" + _journal("false")},
        "samples.jsonl:2",
    ),
    "garbage bytes in environment.json": (
        {"environment.json": b"\x00\xff\xfe"},
        "environment.json",
    ),
    "garbage bytes in the journal": (
        {"samples.jsonl": b"\x89PNG\r\n\x1a\n\x00\xff garbage\n"},
        "samples.jsonl:1",
    ),
    "newer schema_version": (
        {"environment.json": ENV.replace(": 2", ": 9", 1)},
        "environment.json",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_file_is_named_in_one_line(
    tmp_path: Path,
    case: str,
    capsys: pytest.CaptureFixture[str],
    fault_row: Callable[..., None],
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    files = {"environment.json": ENV, "samples.jsonl": _journal("false"), "end.json": END}
    changed, named = CORRUPT[case]
    for name, content in {**files, **changed}.items():
        data = content if isinstance(content, bytes) else content.encode()
        (run / name).write_bytes(data)
    statuses = [main(["report", str(run), "-o", str(tmp_path / "r.html")])]
    statuses.append(main(["compare", str(run), str(run)]))
    statuses.append(main(["export", str(run)]))
    err = capsys.readouterr().err
    assert statuses == [2, 2, 2]
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert all(f"{run}/{named}" in line for line in lines), err
    message = lines[0].split(f"{run}/", 1)[1]
    fault_row(
        case=f"reading: {case}",
        outcome=f"report/compare/export exit 2: '{message}'",
        data_kept="files untouched",
    )


def test_a_bad_parquet_falls_back_to_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_row: Callable[..., None]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "environment.json").write_text(ENV)
    (run / "end.json").write_text(END)
    (run / "samples.jsonl").write_text(_journal("false", '"false"', "true"))
    pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(run / "samples.parquet")  # another schema
    assert main(["report", str(run), "-o", str(tmp_path / "r.html"), "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert "samples.parquet: not an isobench samples file: no column 'run_id'" in err
    assert "read the intact journal samples.jsonl instead" in err
    assert "samples.jsonl:2 ('false' read as false)" in err
    summary = json.loads((tmp_path / "r.html").read_text())["summary"]
    assert [row["n"] for row in summary] == [2]  # two measured, one warm-up: "false" is no warm-up
    fault_row(
        case='reading: Parquet of another schema, journal intact, a warmup written as "false"',
        outcome='warning naming the Parquet; journal read instead; "false" read as false '
        "(with a warning naming the line)",
        data_kept="every journal row",
    )
