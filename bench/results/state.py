"""How a run ends: the journal consolidated into Parquet, then ``end.json``; read back as a state.

A run without an end marker did not finish: it is still ``running`` when its harness holds the
journal's lock, else ``unfinished`` (layout 1 runs, without end markers, are read from their
environment.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.schema import read_journal
from bench.storage import (
    END_MARKER,
    SAMPLES_JSONL,
    SAMPLES_PARQUET,
    SCHEMA_VERSION,
    RunState,
    atomic_write_json,
    in_use,
    read_end_marker,
    write_parquet,
)

#: What each state means, for notes, banners and refusals.
STATE_TEXT: dict[str, str] = {
    "interrupted": "it was interrupted (Ctrl-C or SIGTERM): planned repetitions are missing",
    "recovered": "its harness died before the end; the journal was consolidated afterwards: "
    "planned repetitions are missing",
    "unfinished": f"it did not finish (no {END_MARKER}: the harness was killed, crashed or "
    "could not write): planned repetitions are missing",
    "running": "it is still running (its harness holds the journal)",
}


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


def _parquet_metadata(environment: Mapping[str, Any]) -> dict[str, Any]:
    host = environment.get("host")
    host = host if isinstance(host, Mapping) else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": str(environment.get("run_id") or ""),
        "host": {"hostname": host.get("hostname"), "identity": host.get("identity")},
    }


def consolidate_journal(
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
