"""Writing a run: its directory (created exclusively), its journal of samples, its end.

:class:`RunWriter` appends each sample to ``samples.jsonl`` as it is measured and, on
``close``, consolidates the journal into Parquet and writes the end marker
(:func:`bench.results.state.consolidate_journal`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bench.results.state import consolidate_journal
from bench.storage import (
    ENVIRONMENT_JSON,
    SAMPLES_JSONL,
    StorageError,
    atomic_write_json,
    lock,
    write_all,
    writing,
)

Status = Literal["ok", "failed", "timeout", "skipped"]


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
            consolidate_journal(self.run_dir, self._environment, state, self.count)
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
