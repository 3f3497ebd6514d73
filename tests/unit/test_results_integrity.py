"""Reading run directories defensively, on literal files: versions, types, fallbacks, states."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import results, storage
from bench.results import (
    ResultsError,
    ResultsWarning,
    RunWriter,
    Sample,
    SchemaVersionError,
    StorageError,
    create_run_dir,
    load,
    read_run,
)

LINE = (
    '{"run_id":"r1","scenario":"s","scenario_hash":"h","backend":"native","variant":"host",'
    '"metric":"startup.total","unit":"s","repetition":0,"warmup":false,"value":1.5,'
    '"status":"ok","reason":"","timestamp":"2026-01-01T00:00:00+00:00"}'
)
ENV: dict[str, Any] = {
    "schema_version": storage.SCHEMA_VERSION,
    "run_id": "r1",
    "host": {"hostname": "h1", "identity": {"fingerprint": "0123456789abcdef", "label": "h1"}},
    "harness": {"version": "0.1.0"},
}


def line(**changes: object) -> str:
    record = json.loads(LINE)
    record.update(changes)
    return json.dumps(record)


def run_dir(tmp_path: Path, journal: str | bytes | None = None, **files: str | bytes) -> Path:
    """A run directory of literal files (``end`` -> end.json, ``env`` -> environment.json)."""
    run = tmp_path / "run"
    run.mkdir(parents=True)
    if journal is not None:
        data = journal.encode() if isinstance(journal, str) else journal
        (run / "samples.jsonl").write_bytes(data)
    names = {"env": "environment.json", "end": "end.json", "parquet": "samples.parquet"}
    for key, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (run / names[key]).write_bytes(data)
    return run


def end(state: str = "complete", version: int = storage.SCHEMA_VERSION) -> str:
    return json.dumps({"schema_version": version, "state": state, "run_id": "r1"})


def written_run(tmp_path: Path, values: tuple[float, ...] = (1.0, 2.0)) -> Path:
    """A run written by the real writer (Parquet, metadata, end marker)."""
    directory = tmp_path / "written"
    with RunWriter(directory) as writer:
        writer.write_environment(ENV)
        for number, value in enumerate(values):
            writer.write(Sample("r1", "s", "h", "native", "host", "m", "s", number, False, value))
    return directory


# -- schema versions ------------------------------------------------------------------------


def test_a_newer_environment_is_refused_naming_file_and_versions(tmp_path: Path) -> None:
    env = json.dumps({**ENV, "schema_version": storage.SCHEMA_VERSION + 1})
    run = run_dir(tmp_path, LINE + "\n", env=env, end=end())
    with pytest.raises(SchemaVersionError) as caught:
        read_run(run)
    text = str(caught.value)
    assert str(run / "environment.json") in text
    assert f"schema_version {storage.SCHEMA_VERSION + 1}" in text
    assert f"reads result schema versions 1 to {storage.SCHEMA_VERSION}" in text
    assert "upgrade isobench" in text


def test_an_older_unreadable_version_names_the_release_that_wrote_it(tmp_path: Path) -> None:
    env = json.dumps({**ENV, "schema_version": 0, "harness": {"version": "0.0.7"}})
    run = run_dir(tmp_path, LINE + "\n", env=env)
    with pytest.raises(SchemaVersionError, match=r"too old.*read it with isobench 0\.0\.7"):
        read_run(run)


@pytest.mark.parametrize("version", ['"2"', "2.0", "true", "null"])
def test_a_version_of_the_wrong_type_is_refused(tmp_path: Path, version: str) -> None:
    env = '{"run_id": "r1", "schema_version": ' + version + "}"
    run = run_dir(tmp_path, LINE + "\n", env=env, end=end())
    if version == "null":  # no version: the first layout, read as such
        assert read_run(run).state == "complete"
        return
    with pytest.raises(SchemaVersionError, match="schema_version must be an integer"):
        read_run(run)


def test_layout_1_is_migrated_from_environment_json(tmp_path: Path) -> None:
    finished = json.dumps({**ENV, "schema_version": 1, "finished": "2026-01-01T00:01:00+00:00"})
    assert read_run(run_dir(tmp_path / "a", LINE + "\n", env=finished)).state == "complete"
    stopped = json.dumps({**json.loads(finished), "interrupted": True})
    assert read_run(run_dir(tmp_path / "b", LINE + "\n", env=stopped)).state == "interrupted"
    killed = json.dumps({**ENV, "schema_version": 1, "finished": None})
    assert read_run(run_dir(tmp_path / "c", LINE + "\n", env=killed)).state == "unfinished"


def test_a_layout_2_run_without_end_marker_is_unfinished(tmp_path: Path) -> None:
    env = json.dumps({**ENV, "finished": "2026-01-01T00:01:00+00:00"})  # not enough in layout 2
    run = read_run(run_dir(tmp_path, LINE + "\n", env=env))
    assert run.state == "unfinished"
    assert not run.complete
    assert run.notes[0].startswith("incomplete run: it did not finish (no end.json")


def test_parquet_metadata_carries_schema_version_and_host_identity(tmp_path: Path) -> None:
    run = written_run(tmp_path)
    metadata = json.loads(pq.read_schema(run / "samples.parquet").metadata[b"isobench"])
    assert metadata == {
        "schema_version": storage.SCHEMA_VERSION,
        "run_id": "r1",
        "host": {"hostname": "h1", "identity": ENV["host"]["identity"]},
    }
    assert json.loads((run / "end.json").read_text())["state"] == "complete"
    # the metadata alone still names the host when environment.json is gone
    (run / "environment.json").unlink()
    assert set(read_run(run).frame["host"]) == {
        "h1 (01234567)"
    }  # the host key: label (fingerprint)


def test_a_newer_parquet_is_refused_not_bypassed(tmp_path: Path) -> None:
    run = written_run(tmp_path)
    path = run / "samples.parquet"
    table = pq.read_table(path)
    meta = {**table.schema.metadata, b"isobench": json.dumps({"schema_version": 99}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(SchemaVersionError, match=r"samples\.parquet: written with result schema"):
        read_run(run)  # the journal is intact, yet a newer file must not be half-read


def test_a_newer_end_marker_is_refused(tmp_path: Path) -> None:
    run = run_dir(tmp_path, LINE + "\n", env=json.dumps(ENV), end=end(version=99))
    with pytest.raises(SchemaVersionError, match=r"end\.json"):
        read_run(run)


# -- environment.json and end.json --------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", r"environment\.json: expected a JSON object, found a list"),
        ('{"run_id": ', r"environment\.json:1: not valid JSON"),
        (b"\xff\xfe\x00garbage", r"environment\.json: not UTF-8 text"),
        ('"a string"', r"environment\.json: expected a JSON object, found a string"),
    ],
)
def test_a_bad_environment_names_the_file(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    run = run_dir(tmp_path, LINE + "\n", env=content)
    with pytest.raises(ResultsError, match=expected):
        read_run(run)


def test_a_bad_end_marker_names_the_file(tmp_path: Path) -> None:
    run = run_dir(tmp_path, LINE + "\n", env=json.dumps(ENV), end=end(state="done"))
    with pytest.raises(ResultsError, match=r"end\.json: state must be one of"):
        read_run(run)


# -- the journal: one line at a time, every field typed ----------------------------------


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("[1, 2, 3]", r"samples\.jsonl:2: expected a JSON object \(one sample\), found a list"),
        ('"text"', r"samples\.jsonl:2: expected a JSON object \(one sample\), found a string"),
        ("{not json", r"samples\.jsonl:2: corrupt sample line"),
        (line(warmup="maybe"), r"samples\.jsonl:2: field 'warmup' must be a boolean"),
        (line(repetition="1"), r"samples\.jsonl:2: field 'repetition' must be int64"),
        (line(repetition=True), r"samples\.jsonl:2: field 'repetition' must be int64"),
        (line(value="1.5"), r"samples\.jsonl:2: field 'value' must be float64"),
        (line(metric=7), r"samples\.jsonl:2: field 'metric' must be string"),
        (line(metric=None), r"samples\.jsonl:2: field 'metric' must be string, found missing"),
        (line(status="great"), r"samples\.jsonl:2: status 'great' is not one of"),
        (line(timestamp="yesterday"), r"samples\.jsonl:2: timestamp 'yesterday' is not ISO"),
    ],
)
def test_a_bad_journal_line_names_file_and_line(tmp_path: Path, second: str, expected: str) -> None:
    run = run_dir(tmp_path, f"{LINE}\n{second}\n{LINE}\n", env=json.dumps(ENV))
    with pytest.raises(ResultsError, match=expected):
        read_run(run)


def test_garbage_bytes_in_the_journal_name_file_and_line(tmp_path: Path) -> None:
    run = run_dir(tmp_path, LINE.encode() + b"\n\x00\xff\xfe\x9c garbage\n" + LINE.encode() + b"\n")
    with pytest.raises(ResultsError, match=r"samples\.jsonl:2: corrupt sample line"):
        read_run(run)


def test_a_missing_field_names_it(tmp_path: Path) -> None:
    record = json.loads(LINE)
    del record["metric"]
    run = run_dir(tmp_path, json.dumps(record) + "\n")
    with pytest.raises(ResultsError, match=r"samples\.jsonl:1: field 'metric' is missing"):
        read_run(run)


def test_warmup_as_a_string_is_converted_explicitly_with_a_note(tmp_path: Path) -> None:
    journal = "\n".join([line(warmup="false"), line(warmup="True"), line(warmup=0), LINE]) + "\n"
    run = read_run(run_dir(tmp_path, journal, env=json.dumps(ENV), end=end()))
    assert run.frame["warmup"].tolist() == [False, True, False, False]  # "false" is not a warm-up
    assert str(run.frame["warmup"].dtype) == "bool"
    note = next(n for n in run.notes if "warm-up flags" in n)
    assert "samples.jsonl:1 ('false' read as false)" in note
    assert "samples.jsonl:2 ('True' read as true)" in note


def test_null_value_reason_and_extra_fields_are_accepted(tmp_path: Path) -> None:
    journal = line(value=None, status="failed", reason=None, note="extra") + "\n"
    frame = read_run(run_dir(tmp_path, journal, env=json.dumps(ENV), end=end())).frame
    assert frame["value"].isna().all()
    assert frame["reason"].tolist() == [""]
    assert frame["note"].tolist() == ["extra"]


def test_only_a_last_line_without_newline_may_be_torn(tmp_path: Path) -> None:
    run = read_run(run_dir(tmp_path / "a", f"{LINE}\n{LINE[:50]}"))
    assert len(run.frame) == 1
    assert any("samples.jsonl:2: torn last line left out" in n for n in run.notes)
    whole = read_run(run_dir(tmp_path / "b", f"{LINE}\n{LINE}"))  # complete, just no newline
    assert len(whole.frame) == 2
    with pytest.raises(ResultsError, match=r"samples\.jsonl:2: corrupt"):
        read_run(run_dir(tmp_path / "c", f"{LINE}\n{LINE[:50]}\n"))  # a newline: not in flight


# -- the Parquet file: checked, and the journal as fallback ------------------------------


def test_a_parquet_of_another_schema_falls_back_to_the_journal(tmp_path: Path) -> None:
    run = written_run(tmp_path, (1.0, 2.0, 3.0))
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(run / "samples.parquet")
    loaded = read_run(run)
    assert loaded.frame["value"].tolist() == [1.0, 2.0, 3.0]
    note = next(n for n in loaded.notes if "samples.parquet" in n)
    assert "not an isobench samples file: no column 'run_id'" in note
    assert "read the intact journal samples.jsonl instead" in note
    with pytest.warns(ResultsWarning, match="read the intact journal"):
        assert len(load([run])) == 3


def test_a_parquet_with_a_wrongly_typed_column_falls_back(tmp_path: Path) -> None:
    run = written_run(tmp_path)
    frame = pq.read_table(run / "samples.parquet").to_pandas()
    frame["warmup"] = frame["warmup"].map(str)  # "False" strings: must not read as warm-ups
    frame.to_parquet(run / "samples.parquet", index=False)
    loaded = read_run(run)
    assert loaded.frame["warmup"].tolist() == [False, False]
    assert any(re.search(r"column 'warmup' is \w*string, expected bool", n) for n in loaded.notes)


def test_a_garbage_parquet_falls_back_and_without_journal_names_the_file(tmp_path: Path) -> None:
    run = written_run(tmp_path)
    (run / "samples.parquet").write_bytes(b"PAR1 this is not parquet \x00\xff" * 10)
    loaded = read_run(run)
    assert len(loaded.frame) == 2
    assert any("samples.parquet: not a readable Parquet file" in n for n in loaded.notes)
    (run / "samples.jsonl").unlink()
    with pytest.raises(ResultsError, match=r"samples\.parquet: not a readable Parquet file"):
        read_run(run)


def test_the_categorical_path_reads_the_same_rows(tmp_path: Path) -> None:
    run = written_run(tmp_path, (1.0, 2.0))
    fast = read_run(run, categorical=True).frame
    assert isinstance(fast["metric"].dtype, pd.CategoricalDtype)
    assert fast["value"].tolist() == [1.0, 2.0]
    assert list(fast["host"].astype(str)) == ["h1 (01234567)"] * 2


# -- states, the lock, consolidation -----------------------------------------------------


def test_a_live_run_is_running_and_never_consolidated(tmp_path: Path) -> None:
    directory = tmp_path / "live"
    writer = RunWriter(directory)
    writer.write_environment(ENV)
    writer.write(Sample("r1", "s", "h", "native", "host", "m", "s", 0, False, 1.0))
    run = read_run(directory, consolidate=True)
    assert run.state == "running"
    assert len(run.frame) == 1
    assert not (directory / "samples.parquet").exists()
    assert not (directory / "end.json").exists()
    writer.release()  # the harness "dies": the kernel drops the lock
    assert read_run(directory).state == "unfinished"


def test_consolidation_writes_parquet_and_marks_the_run_recovered(tmp_path: Path) -> None:
    run = run_dir(tmp_path, f"{LINE}\n{line(repetition=1)}\n", env=json.dumps(ENV))
    loaded = results.consolidate(run)
    assert loaded.state == "recovered"
    assert any("consolidated 2 samples from samples.jsonl into samples.parquet" in n
               for n in loaded.notes)  # fmt: skip
    marker = json.loads((run / "end.json").read_text())
    assert (marker["state"], marker["samples"]) == ("recovered", 2)
    again = read_run(run)
    assert again.state == "recovered"
    assert not again.complete
    assert again.frame["repetition"].tolist() == [0, 1]


def test_consolidation_of_a_read_only_run_says_why_and_reads_the_journal(tmp_path: Path) -> None:
    run = run_dir(tmp_path, LINE + "\n", env=json.dumps(ENV))

    def refuse(*args: object, **kwargs: object) -> None:
        raise StorageError(run / "samples.parquet", OSError(30, "Read-only file system"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bench.results.state.write_parquet", refuse)  # consolidation writes it
        loaded = results.consolidate(run)
    assert loaded.state == "unfinished"
    assert any("could not consolidate it: cannot write" in n and "Read-only" in n
               for n in loaded.notes)  # fmt: skip
    assert len(loaded.frame) == 1


# -- writing: exclusive directories and journals ------------------------------------------


def test_a_run_id_collision_is_retried_never_merged(tmp_path: Path) -> None:
    ids = iter(["same", "same", "other"])
    first = create_run_dir(tmp_path, make_id=lambda: next(ids))
    second = create_run_dir(tmp_path, make_id=lambda: next(ids))
    assert first == ("same", tmp_path / "same")
    assert second == ("other", tmp_path / "other")


def test_run_ids_running_out_is_an_error_not_a_merge(tmp_path: Path) -> None:
    create_run_dir(tmp_path, make_id=lambda: "x")
    with pytest.raises(StorageError, match="no free run id after 3 attempts"):
        create_run_dir(tmp_path, make_id=lambda: "x", attempts=3)


def test_a_second_writer_cannot_merge_into_a_run(tmp_path: Path) -> None:
    written = written_run(tmp_path)
    with pytest.raises(StorageError, match=r"samples\.jsonl: it already exists"):
        RunWriter(written)


def test_out_naming_a_file_is_a_storage_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(StorageError, match=r"cannot use .*file: it exists and is not a dir"):
        create_run_dir(target)
    with pytest.raises(StorageError, match=r"cannot create .*file/sub: Not a directory"):
        create_run_dir(target / "sub")


def test_a_failed_write_leaves_only_whole_samples(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    writer = RunWriter(directory)
    sample = Sample("r1", "s", "h", "native", "host", "m", "s", 0, False, 1.0)
    writer.write(sample)

    def half_then_full(fd: int, data: bytes) -> None:
        os.write(fd, data[:40])  # half a line reached the file, then the disk filled up
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bench.results.writer.write_all", half_then_full)
        with pytest.raises(StorageError, match=r"samples\.jsonl: No space left on device"):
            writer.write(sample)
    writer.release()
    text = (directory / "samples.jsonl").read_text()
    assert text == sample.to_json() + "\n"  # the partial line was cut back
    assert writer.count == 1
