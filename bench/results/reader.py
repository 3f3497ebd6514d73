"""Reading runs: one run directory as a :class:`LoadedRun`, many as one tidy frame.

Samples come from the Parquet file of an ended run, else from the journal; what the loader
noticed (an incomplete run, a fallback, a converted field) is kept as notes and issued as
:class:`ResultsWarning`. ``consolidate=True`` finishes a run whose harness died.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.results.hosts import host_key
from bench.results.state import STATE_TEXT, consolidate_journal, run_state
from bench.schema import empty_frame, read_journal, read_parquet
from bench.storage import (
    END_MARKER,
    ENVIRONMENT_JSON,
    SAMPLES_JSONL,
    SAMPLES_PARQUET,
    ResultsError,
    RunState,
    SchemaVersionError,
    StorageError,
    check_schema_version,
    claimed,
    read_end_marker,
    read_json_object,
)


class ResultsWarning(UserWarning):
    """Something the loader noticed and worked around (a fallback, a conversion, a torn line)."""


@dataclass
class LoadedRun:
    """One run directory as read: samples, environment, how it ended, what the loader noticed."""

    path: Path
    frame: pd.DataFrame
    environment: dict[str, Any]
    state: RunState
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the run ended normally with every planned repetition."""
        return self.state == "complete"


def load_environment(run_dir: Path) -> dict[str, Any]:
    """Return a run's ``environment.json`` (empty dict if missing), its schema version checked."""
    path = run_dir / ENVIRONMENT_JSON
    if not path.exists():
        return {}
    environment = read_json_object(path)
    harness = environment.get("harness")
    written_by = harness.get("version") if isinstance(harness, Mapping) else None
    check_schema_version(environment.get("schema_version"), path, written_by)
    return environment


def read_run(run_dir: Path, *, categorical: bool = False, consolidate: bool = False) -> LoadedRun:
    """Read one run directory: samples (with a ``host`` column), environment, state, notes.

    ``categorical=True`` keeps the string columns dictionary-encoded (several times faster at
    a million rows; statistics group on the codes). ``consolidate=True`` finishes a run whose
    harness died: its journal becomes ``samples.parquet`` and it is marked ``recovered``.
    """
    environment = load_environment(run_dir)
    state = run_state(run_dir, environment)
    notes: list[str] = []
    frame, metadata = _read_samples(run_dir, state, categorical, notes)
    run = LoadedRun(run_dir, frame, environment, state, notes)
    if state != "complete":
        notes.insert(0, f"incomplete run: {STATE_TEXT[state]}")
    if state == "unfinished" and consolidate:
        _recover(run)
    source = environment if environment.get("host") else {"host": metadata.get("host")}
    host = host_key(source, run_dir.name)
    if isinstance(frame["run_id"].dtype, pd.CategoricalDtype):
        codes = np.zeros(len(frame), dtype=np.int8)
        frame["host"] = pd.Categorical.from_codes(codes, categories=pd.Index([host]))
    else:
        frame["host"] = pd.Series([host] * len(frame), dtype="string", index=frame.index)
    run.frame = frame
    return run


def _read_samples(
    run_dir: Path, state: RunState, categorical: bool, notes: list[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Samples from the Parquet file of an ended run, else (or when it is bad) the journal."""
    parquet, journal = run_dir / SAMPLES_PARQUET, run_dir / SAMPLES_JSONL
    if parquet.exists() and (state in ("complete", "interrupted", "recovered")):
        try:
            return read_parquet(parquet, categorical=categorical)
        except SchemaVersionError:
            raise
        except ResultsError as exc:
            if not journal.exists():
                raise
            notes.append(f"{exc}; read the intact journal {journal.name} instead")
    if journal.exists():
        return read_journal(journal, notes), {}
    msg = f"{run_dir}: not a run directory (no {SAMPLES_PARQUET} or {SAMPLES_JSONL})"
    raise FileNotFoundError(msg)


def _recover(run: LoadedRun) -> None:
    """Consolidate an unfinished run from its journal (unless its harness is alive)."""
    journal = run.path / SAMPLES_JSONL
    with claimed(journal) as free:
        if not free:
            run.state = "running"
            return
        if read_end_marker(run.path) is not None:  # it ended while we were reading
            run.state = run_state(run.path, run.environment)
            return
        try:
            rows = consolidate_journal(run.path, run.environment, "recovered", None)
        except StorageError as exc:
            run.notes.append(f"could not consolidate it: {exc}; read from its journal")
            return
        scratch = run.path / "work"  # the dead harness's scratch space (fio files...)
        cleaned = f"; removed its scratch directory {scratch.name}/" if scratch.is_dir() else ""
        shutil.rmtree(scratch, ignore_errors=True)
    run.state = "recovered"
    run.notes.append(
        f"consolidated {rows} samples from {SAMPLES_JSONL} into {SAMPLES_PARQUET} and "
        f"marked it recovered ({END_MARKER}){cleaned}"
    )


def _warn(run: LoadedRun) -> None:
    for note in run.notes:
        warnings.warn(f"{run.path}: {note}", ResultsWarning, stacklevel=3)


def load_run(run_dir: Path, *, categorical: bool = False) -> pd.DataFrame:
    """Load one run directory (Parquet if consolidated, else the journal); notes are warnings."""
    run = read_run(run_dir, categorical=categorical)
    _warn(run)
    return run.frame


def load(paths: Iterable[str | Path], *, consolidate: bool = False) -> pd.DataFrame:
    """Load any number of run directories into one tidy DataFrame (plus a ``host`` column).

    What the loader noticed (an incomplete run, a fallback to the journal, a converted field)
    is issued as a :class:`ResultsWarning`; ``consolidate=True`` finishes runs whose harness
    died (see :func:`read_run`).
    """
    runs = [read_run(Path(p), consolidate=consolidate) for p in paths]
    for run in runs:
        _warn(run)
    if not runs:
        frame = empty_frame()
        frame["host"] = pd.Series([], dtype="string")
        return frame
    return pd.concat([run.frame for run in runs], ignore_index=True)


def consolidate(run_dir: Path) -> LoadedRun:
    """Finish a run whose harness died: write its Parquet file and end marker from the journal."""
    return read_run(run_dir, consolidate=True)


def read_jsonl(path: Path) -> pd.DataFrame:
    """Read a samples journal, every line's fields checked; notes are warnings."""
    notes: list[str] = []
    frame = read_journal(path, notes)
    for note in notes:
        warnings.warn(note, ResultsWarning, stacklevel=2)
    return frame
