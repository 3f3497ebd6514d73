"""Result schema and storage: one row per sample, appended as measured, loaded as pandas.

A run directory (``results/<run-id>/``, created exclusively) holds ``samples.jsonl`` (the
journal: one line per sample, handed to the kernel as it is measured, so a killed harness loses
at most the sample in flight), ``samples.parquet`` (the consolidated rows, with the schema
version and host identity in its metadata), ``environment.json``, ``scenarios/`` and, written
last and atomically, ``end.json``: a run without it did not finish. The file rules live in
:mod:`bench.storage`, the schema and its checked readers in :mod:`bench.schema`.

:func:`load` reads any number of run directories into one tidy frame; :func:`read_run` also
says how each run ended and what the loader noticed, and can consolidate a run whose harness
died from its journal.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from bench.schema import COLUMNS, STATUSES, empty_frame, read_journal, read_parquet
from bench.storage import (
    END_MARKER,
    ENVIRONMENT_JSON,
    SAMPLES_JSONL,
    SAMPLES_PARQUET,
    SCHEMA_VERSION,
    ResultsError,
    RunState,
    SchemaVersionError,
    StorageError,
    atomic_write_json,
    check_schema_version,
    claimed,
    in_use,
    lock,
    read_end_marker,
    read_json_object,
    write_all,
    write_parquet,
    writing,
)

__all__ = [
    "COLUMNS",
    "END_MARKER",
    "ENVIRONMENT_JSON",
    "SAMPLES_JSONL",
    "SAMPLES_PARQUET",
    "SCHEMA_VERSION",
    "STATUSES",
    "LoadedRun",
    "ResultsError",
    "ResultsWarning",
    "RunState",
    "RunWriter",
    "Sample",
    "SchemaVersionError",
    "Status",
    "StorageError",
    "consolidate",
    "create_run_dir",
    "empty_frame",
    "host_name",
    "load",
    "load_environment",
    "load_run",
    "new_run_id",
    "read_jsonl",
    "read_run",
]

Status = Literal["ok", "failed", "timeout", "skipped"]


class ResultsWarning(UserWarning):
    """Something the loader noticed and worked around (a fallback, a conversion, a torn line)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured value (or one failed/skipped/timed-out attempt, with ``value`` NaN)."""

    run_id: str
    scenario: str
    scenario_hash: str
    backend: str
    variant: str
    metric: str
    unit: str
    repetition: int
    warmup: bool
    value: float
    status: Status = "ok"
    reason: str = ""
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> str:
        """Serialize as one JSON line (NaN encoded as null)."""
        import json  # noqa: PLC0415 - only writers need it

        record = asdict(self)
        if record["value"] != record["value"]:  # NaN
            record["value"] = None
        return json.dumps(record, separators=(",", ":"), allow_nan=False)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id such as ``20261128T003112Z-3f9a`` (unique per directory: see below)."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def create_run_dir(
    out_dir: Path, *, make_id: Callable[[], str] = new_run_id, attempts: int = 50
) -> tuple[str, Path]:
    """Create ``out_dir/<run-id>/`` exclusively; a taken id is retried, never shared."""
    with writing(out_dir, "create"):
        if out_dir.exists() and not out_dir.is_dir():
            raise StorageError(out_dir, "it exists and is not a directory", "use")
        out_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        run_id = make_id()
        path = out_dir / run_id
        try:
            path.mkdir()  # exclusive: two runs never share a directory
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(path, exc, "create") from exc
        return run_id, path
    msg = f"no free run id after {attempts} attempts"
    raise StorageError(out_dir, msg, "create a run directory in")


class RunWriter:
    """Append the samples of one run to its journal; consolidate and mark the run's end.

    The journal is created exclusively (a second writer cannot merge into it) and locked for
    the writer's life. ``close(state)`` writes the Parquet file and then the end marker;
    leaving without ``close`` (an error) leaves the run visibly unfinished.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._path = run_dir / SAMPLES_JSONL
        with writing(run_dir, "create"):
            run_dir.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            self._fd: int | None = os.open(self._path, flags, 0o644)
        except FileExistsError as exc:
            msg = "it already exists (another run's journal: runs are never merged)"
            raise StorageError(self._path, msg, "create") from exc
        except OSError as exc:
            raise StorageError(self._path, exc, "create") from exc
        lock(self._fd)  # a new file: nobody else can hold it
        self._size = 0
        self._environment: dict[str, Any] = {}
        self.count = 0

    def write(self, sample: Sample) -> None:
        """Append one sample; once this returns it survives a kill -9 of the harness."""
        if self._fd is None:
            msg = "RunWriter is closed"
            raise RuntimeError(msg)
        data = (sample.to_json() + "\n").encode()
        # One write per line into the page cache, no fsync: the page cache survives kill -9 of
        # the harness, and an fsync per row (an ext4 journal commit) measurably slowed the
        # *next* repetition (native startup 0.8 -> 1.7 ms median here); fsync once at close.
        try:
            write_all(self._fd, data)
        except OSError as exc:
            os.ftruncate(self._fd, self._size)  # drop a partial line: whole samples only
            raise StorageError(self._path, exc) from exc
        self._size += len(data)
        self.count += 1

    def write_environment(self, environment: Mapping[str, Any]) -> None:
        """Replace ``environment.json`` atomically (kept for the Parquet metadata)."""
        atomic_write_json(self.run_dir / ENVIRONMENT_JSON, environment)
        self._environment = dict(environment)

    def close(self, state: Literal["complete", "interrupted"] = "complete") -> None:
        """Consolidate the journal into Parquet, then write the end marker (the run ended)."""
        if self._fd is None:
            return
        try:
            with writing(self._path):
                os.fsync(self._fd)
            _consolidate_journal(self.run_dir, self._environment, state, self.count)
        finally:
            self.release()

    def release(self) -> None:
        """Close the journal without marking the end (the run stays unfinished)."""
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.release()


def _parquet_metadata(environment: Mapping[str, Any]) -> dict[str, Any]:
    host = environment.get("host")
    host = host if isinstance(host, Mapping) else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": str(environment.get("run_id") or ""),
        "host": {"hostname": host.get("hostname"), "identity": host.get("identity")},
    }


def _consolidate_journal(
    run_dir: Path, environment: Mapping[str, Any], state: str, count: int | None
) -> int:
    """Write the Parquet file from the journal, then the end marker; return the row count."""
    frame = read_journal(run_dir / SAMPLES_JSONL, [])
    write_parquet(frame, run_dir / SAMPLES_PARQUET, _parquet_metadata(environment))
    marker = {
        "schema_version": SCHEMA_VERSION,
        "run_id": str(environment.get("run_id") or ""),
        "state": state,
        "samples": len(frame) if count is None else count,
        "written": datetime.now(UTC).isoformat(),
    }
    atomic_write_json(run_dir / END_MARKER, marker)
    return len(frame)


# -- reading ----------------------------------------------------------------------------------

#: What each state means, for notes, banners and refusals.
STATE_TEXT: dict[str, str] = {
    "interrupted": "it was interrupted (Ctrl-C or SIGTERM): planned repetitions are missing",
    "recovered": "its harness died before the end; the journal was consolidated afterwards: "
    "planned repetitions are missing",
    "unfinished": f"it did not finish (no {END_MARKER}: the harness was killed, crashed or "
    "could not write): planned repetitions are missing",
    "running": "it is still running (its harness holds the journal)",
}


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


def host_name(environment: Mapping[str, Any]) -> str:
    """The hostname recorded in an environment.json ('' when absent)."""
    host = environment.get("host")
    return str(host.get("hostname") or "") if isinstance(host, dict) else ""


#: Hardware facts that tell two machines apart when a run has no recorded fingerprint.
_HARDWARE_FACTS: Final = ("cpu_model", "cpu_count", "memory_bytes", "arch", "kernel", "os")


def host_key(environment: Mapping[str, Any], run: str = "") -> str:
    """The frame's host: ``label (fingerprint[:8])``; two machines never share one.

    The fingerprint comes from ``host.identity`` (:func:`bench.sysinfo.host_identity`).
    Older runs without it fall back to the hostname plus a hash of the run's hardware facts
    (``label (hw 1a2b3c4d)``); a run with no hardware facts at all is a host of its own
    (``label (run RUN)``), since nothing shows it shares a machine with another run.
    """
    host = environment.get("host")
    host = host if isinstance(host, Mapping) else {}
    identity = host.get("identity")
    if isinstance(identity, Mapping) and identity.get("fingerprint"):
        label = str(identity.get("label") or host.get("hostname") or "host")
        return f"{label} ({str(identity['fingerprint'])[:8]})"
    facts = [f"{name}={host.get(name)}" for name in _HARDWARE_FACTS if host.get(name)]
    if not facts:
        label = host.get("hostname") or "unknown host"
        return f"{label} (run {environment.get('run_id') or run or '?'})"
    digest = hashlib.sha256("\n".join(facts).encode()).hexdigest()[:8]
    return f"{host.get('hostname') or 'host'} (hw {digest})"


def run_state(run_dir: Path, environment: Mapping[str, Any]) -> RunState:
    """How a run ended: its end marker, else a live lock, else (layout 1) environment.json."""
    marker = read_end_marker(run_dir)
    if marker is not None:
        state: RunState = marker["state"]
        return state
    if in_use(run_dir / SAMPLES_JSONL):
        return "running"
    version = environment.get("schema_version")
    # layout 1 had no end marker: migrate in memory from environment.json's own fields
    if version in (None, 1) and environment.get("finished"):
        return "interrupted" if environment.get("interrupted") is True else "complete"
    return "unfinished"


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
            rows = _consolidate_journal(run.path, run.environment, "recovered", None)
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


# -- one way to count rows (run, report and compare print the same four numbers) -------------


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows of a run by what they are: every row is exactly one of the four."""

    measured: int = 0  # status ok, not a warm-up (finite value)
    warmup: int = 0  # status ok, a warm-up (kept, never in the statistics)
    failed: int = 0  # status failed or timeout, warm-up or not
    skipped: int = 0  # status skipped (the backend/variant could not be prepared)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.measured + other.measured,
            self.warmup + other.warmup,
            self.failed + other.failed,
            self.skipped + other.skipped,
        )

    def describe(self) -> str:
        """``12 measured, 4 warm-up, 1 failed, 0 skipped samples``."""
        return (
            f"{self.measured} measured, {self.warmup} warm-up, {self.failed} failed, "
            f"{self.skipped} skipped samples"
        )


def count_row(status: str, warmup: bool, value: float) -> Counts:
    """The :class:`Counts` of one row."""
    if status == "skipped":
        return Counts(skipped=1)
    if status != "ok" or math.isnan(value):  # an ok row without a value is no measurement
        return Counts(failed=1)
    return Counts(warmup=1) if warmup else Counts(measured=1)


def count_frame(frame: pd.DataFrame) -> Counts:
    """The :class:`Counts` of a sample frame (same rules as :func:`count_row`)."""
    if frame.empty:
        return Counts()
    status = frame["status"].astype("string")
    ok = (status == "ok") & frame["value"].notna()
    warm = frame["warmup"].astype(bool)
    skipped = int((status == "skipped").sum())
    return Counts(
        measured=int((ok & ~warm).sum()),
        warmup=int((ok & warm).sum()),
        failed=len(frame) - skipped - int(ok.sum()),
        skipped=skipped,
    )
