"""The files of a run directory, written atomically and read defensively.

What a run directory holds, and the rules that make it crash-consistent:

- ``samples.jsonl``, the journal: one JSON object per sample, appended with one ``write`` per
  line while the harness holds an exclusive ``flock`` on it (the kernel drops the lock when the
  harness dies, kill -9 included, so a held lock means "still running").
- ``samples.parquet``: the same rows, written to a temporary file and renamed into place, with
  the schema version and the host identity in the file's key-value metadata.
- ``environment.json``: what the run ran on (replaced atomically, like every file here).
- ``end.json``, the end marker: written last, atomically. A run without it did not finish.

The readers here (JSON files, schema versions, the end marker) name the file in every error;
the sample schema and the checked readers of the journal and Parquet file are in
:mod:`bench.schema`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from bench import __version__

#: The version of the run-directory layout this isobench writes. 1: no end marker, no Parquet
#: metadata (completeness read from environment.json); 2: end.json and Parquet metadata.
SCHEMA_VERSION: Final = 2
#: The oldest layout this isobench still reads (migrating it in memory).
OLDEST_SCHEMA: Final = 1

SAMPLES_JSONL: Final = "samples.jsonl"
SAMPLES_PARQUET: Final = "samples.parquet"
ENVIRONMENT_JSON: Final = "environment.json"
END_MARKER: Final = "end.json"
#: The Parquet key-value metadata key holding isobench's own metadata (a JSON object).
PARQUET_KEY: Final = b"isobench"

#: How a run ended: complete; interrupted (Ctrl-C/SIGTERM, stopped cleanly); recovered (the
#: harness died and a later ``isobench report`` consolidated the journal); unfinished (the
#: harness died or a write failed: no end marker); running (its harness still holds the journal).
RunState = Literal["complete", "interrupted", "recovered", "unfinished", "running"]
ENDED_STATES: Final = ("complete", "interrupted", "recovered")


class ResultsError(ValueError):
    """A result file that cannot be read as it is; the message names the file (and line)."""


class SchemaVersionError(ResultsError):
    """A result file written in a layout this isobench does not read."""


class StorageError(Exception):
    """Writing a run directory failed (disk full, read-only, name too long...).

    The message is one line naming the path and the cause.
    """

    def __init__(self, path: Path, cause: OSError | str, action: str = "write") -> None:
        self.path = path
        reason = cause if isinstance(cause, str) else (cause.strerror or str(cause))
        super().__init__(f"cannot {action} {path}: {reason}")


@contextlib.contextmanager
def writing(path: Path, action: str = "write") -> Iterator[None]:
    """Turn an :class:`OSError` in the block into a :class:`StorageError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise StorageError(path, exc, action) from exc


# -- writing ------------------------------------------------------------------------------------


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is retried, then raises)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _install(temporary: Path, path: Path) -> None:
    """fsync ``temporary`` and rename it onto ``path`` (readers see the old or the new file)."""
    fd = os.open(temporary, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once (write a temporary file, rename)."""
    temporary = _temporary(path)
    with writing(path):
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            _install(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise


def atomic_write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` as indented JSON."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, text.encode())


def write_parquet(frame: pd.DataFrame, path: Path, metadata: Mapping[str, Any]) -> None:
    """Write ``frame`` to ``path`` atomically, ``metadata`` under the ``isobench`` key."""
    import pyarrow as pa  # noqa: PLC0415 - pandas already imported pyarrow
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = pa.Table.from_pandas(frame, preserve_index=False)
    merged = {**(table.schema.metadata or {}), PARQUET_KEY: json.dumps(dict(metadata)).encode()}
    table = table.replace_schema_metadata(merged)
    temporary = _temporary(path)
    with writing(path):
        try:
            pq.write_table(table, temporary)
            _install(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise


# -- the journal lock ---------------------------------------------------------------------------


def lock(fd: int) -> bool:
    """Take the exclusive lock on an open journal; False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def claimed(journal: Path) -> Iterator[bool]:
    """Hold the journal's lock for the block; yields False when its harness is still alive."""
    try:
        fd = os.open(journal, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True
        return
    try:
        yield lock(fd)
    finally:
        os.close(fd)  # releases our lock, if we took it


def in_use(journal: Path) -> bool:
    """Whether a live harness holds ``journal`` (its run is still going)."""
    with claimed(journal) as free:
        return not free


# -- reading: JSON files and versions -------------------------------------------------------


def kind_of(value: object) -> str:
    """'a list', 'a string', 'null'...: the JSON kind of a value, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; every error names the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read: {exc.strerror or exc}"
        raise ResultsError(msg) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text (bad byte at offset {exc.start}): corrupt file"
        raise ResultsError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
        raise ResultsError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path}: expected a JSON object, found {kind_of(data)}"
        raise ResultsError(msg)
    return data


def check_schema_version(value: object, source: Path, written_by: object = None) -> int:
    """The schema version recorded in ``source``; refuse one this isobench does not read.

    A missing version is the first layout (it predates the field in hand-made files).
    """
    if value is None:
        return OLDEST_SCHEMA
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{source}: schema_version must be an integer, found {value!r}"
        raise SchemaVersionError(msg)
    readable = f"this isobench ({__version__}) reads result schema versions {OLDEST_SCHEMA}"
    readable += f" to {SCHEMA_VERSION}"
    if value > SCHEMA_VERSION:
        msg = f"{source}: written with result schema_version {value}; {readable}: upgrade isobench"
        raise SchemaVersionError(msg)
    if value < OLDEST_SCHEMA:
        release = f"isobench {written_by}" if written_by else "the isobench release that wrote it"
        msg = f"{source}: result schema_version {value} is too old; {readable}: read it with "
        msg += release
        raise SchemaVersionError(msg)
    return value


def read_end_marker(run_dir: Path) -> dict[str, Any] | None:
    """The end marker of a run (None when the run did not finish); its fields are checked."""
    path = run_dir / END_MARKER
    if not path.exists():
        return None
    marker = read_json_object(path)
    check_schema_version(marker.get("schema_version"), path)
    if marker.get("state") not in ENDED_STATES:
        msg = (
            f"{path}: state must be one of {', '.join(ENDED_STATES)}, found {marker.get('state')!r}"
        )
        raise ResultsError(msg)
    return marker
