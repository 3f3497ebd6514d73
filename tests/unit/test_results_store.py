"""Result schema and storage: write -> load round trip, torn journal, several runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.results import (
    COLUMNS,
    ResultsWarning,
    RunWriter,
    Sample,
    load,
    new_run_id,
    read_jsonl,
)


def sample(run_id: str = "r1", metric: str = "startup.ready", **kw: object) -> Sample:
    fields: dict[str, object] = {
        "run_id": run_id,
        "scenario": "startup",
        "scenario_hash": "abc123def456",
        "backend": "native",
        "variant": "host",
        "metric": metric,
        "unit": "s",
        "repetition": 0,
        "warmup": False,
        "value": 0.001,
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


def write_run(directory: Path, samples: list[Sample], hostname: str = "h1") -> Path:
    with RunWriter(directory) as writer:
        for s in samples:
            writer.write(s)
        writer.write_environment({"host": {"hostname": hostname}})
    return directory


def test_round_trip_schema_and_dtypes(tmp_path: Path) -> None:
    rows = [
        sample(value=0.0015, repetition=1),
        sample(metric="startup.total", value=math.nan, status="failed", reason="boom"),
        sample(warmup=True, value=0.002),
    ]
    run = write_run(tmp_path / "run", rows)
    assert (run / "samples.parquet").exists()
    df = load([run])
    assert list(df.columns) == [*COLUMNS, "host"]
    for name, dtype in COLUMNS.items():
        assert str(df[name].dtype) == dtype, name
    assert df["value"].iloc[0] == 0.0015  # unrounded
    assert math.isnan(df["value"].iloc[1])
    assert df["status"].tolist() == ["ok", "failed", "ok"]
    assert df["reason"].iloc[1] == "boom"
    assert df["warmup"].tolist() == [False, False, True]
    assert df["repetition"].tolist() == [1, 0, 0]
    assert set(df["host"]) == {"h1 (run run)"}  # no fingerprint, no hardware facts
    assert df["timestamp"].iloc[0] <= df["timestamp"].iloc[2]


def test_parquet_and_journal_agree(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [sample(value=v) for v in (1.0, 2.0, 3.5)])
    from_parquet = load([run]).drop(columns="host")
    from_journal = read_jsonl(run / "samples.jsonl")
    pd.testing.assert_frame_equal(from_parquet, from_journal)


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    line = sample(value=math.nan, status="timeout").to_json()
    assert json.loads(line)["value"] is None


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # what a kill -9 mid-write leaves: the journal, no Parquet, half a line at the end
    lines = [sample(value=1.0).to_json(), sample(value=2.0).to_json()]
    torn = sample(value=3.0).to_json()[:40]
    (run / "samples.jsonl").write_text("\n".join([*lines, torn]))
    assert not (run / "samples.parquet").exists()
    with pytest.warns(ResultsWarning) as caught:
        df = load([run])
    notes = [str(w.message) for w in caught]
    assert any("samples.jsonl:3: torn last line left out" in n for n in notes)
    assert any("incomplete run: it did not finish" in n for n in notes)
    assert df["value"].tolist() == [1.0, 2.0]
    assert set(df["host"]) == {"unknown host (run run)"}  # no environment.json: not an error


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(sample().to_json() + "\n{not json\n" + sample().to_json() + "\n")
    with pytest.raises(ValueError, match=r"samples.jsonl:2: corrupt"):
        read_jsonl(path)


def test_load_several_runs_into_one_frame(tmp_path: Path) -> None:
    first = write_run(tmp_path / "a", [sample("a", value=1.0)], hostname="h1")
    second = write_run(tmp_path / "b", [sample("b", value=2.0), sample("b", value=3.0)], "h2")
    df = load([first, second])
    assert len(df) == 3
    assert df.groupby("run_id")["host"].first().to_dict() == {"a": "h1 (run a)", "b": "h2 (run b)"}
    for name, dtype in COLUMNS.items():
        assert str(df[name].dtype) == dtype, name


def test_load_nothing_gives_empty_typed_frame() -> None:
    df = load([])
    assert df.empty
    assert list(df.columns) == [*COLUMNS, "host"]
    assert str(df["timestamp"].dtype) == COLUMNS["timestamp"]


def test_empty_run_still_loads(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [])
    assert load([run]).empty


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load([tmp_path])


def test_writer_refuses_after_close(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(RuntimeError):
        writer.write(sample())


def test_run_ids_sort_by_time_and_differ() -> None:
    ids = {new_run_id() for _ in range(20)}
    assert len(ids) > 1
    early = new_run_id(pd.Timestamp("2025-01-01", tz="UTC").to_pydatetime())
    late = new_run_id(pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime())
    assert early < late
