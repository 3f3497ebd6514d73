"""Result schema and storage: one row per sample, appended as measured, loaded as pandas.

A run directory holds ``samples.jsonl`` (append-only, flushed to the kernel per row, so a
killed harness loses at most the sample in flight; fsynced at close),
``samples.parquet`` (written by :meth:`RunWriter.close`), ``environment.json`` and
``scenarios/``. :func:`load` reads any number of run directories into one tidy frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import numpy as np
import pandas as pd

SCHEMA_VERSION: Final = 1

Status = Literal["ok", "failed", "timeout", "skipped"]

#: Column name -> pandas dtype of the tidy sample frame, in order.
COLUMNS: Final[dict[str, str]] = {
    "run_id": "string",
    "scenario": "string",
    "scenario_hash": "string",
    "backend": "string",
    "variant": "string",
    "metric": "string",
    "unit": "string",
    "repetition": "int64",
    "warmup": "bool",
    "value": "float64",
    "status": "string",
    "reason": "string",
    "timestamp": "datetime64[ns, UTC]",
}

SAMPLES_JSONL: Final = "samples.jsonl"
SAMPLES_PARQUET: Final = "samples.parquet"
ENVIRONMENT_JSON: Final = "environment.json"


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
        record = asdict(self)
        if record["value"] != record["value"]:  # NaN
            record["value"] = None
        return json.dumps(record, separators=(",", ":"), allow_nan=False)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as ``20261128T003112Z-3f9a``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


class RunWriter:
    """Append samples of one run to disk as they are produced."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._path = run_dir / SAMPLES_JSONL
        self._fh: TextIO | None = self._path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, sample: Sample) -> None:
        """Append one sample; once this returns it survives a kill -9 of the harness."""
        if self._fh is None:
            msg = "RunWriter is closed"
            raise RuntimeError(msg)
        self._fh.write(sample.to_json() + "\n")
        # flush, not fsync: the page cache survives kill -9 of the harness, and an fsync per
        # row (an ext4 journal commit) measurably slowed the *next* repetition (native
        # startup 0.8 -> 1.7 ms median here); the journal is fsynced once at close.
        self._fh.flush()
        self.count += 1

    def write_environment(self, environment: Mapping[str, Any]) -> None:
        """Write ``environment.json`` for this run."""
        path = self.run_dir / ENVIRONMENT_JSON
        path.write_text(json.dumps(environment, indent=2, sort_keys=True, default=str) + "\n")

    def close(self) -> None:
        """Close the journal and consolidate it into Parquet."""
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        frame = read_jsonl(self._path)
        frame.to_parquet(self.run_dir / SAMPLES_PARQUET, index=False)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def empty_frame() -> pd.DataFrame:
    """An empty frame with the sample schema."""
    return _coerce(pd.DataFrame({name: [] for name in COLUMNS}))


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name, dtype in COLUMNS.items():
        if name not in frame:
            frame[name] = pd.NA
        if name == "timestamp":
            stamps = pd.to_datetime(frame[name], utc=True, format="ISO8601")
            frame[name] = stamps.dt.as_unit("ns")  # pandas may infer µs; the schema says ns
        elif name == "value":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        else:
            frame[name] = frame[name].astype(dtype)  # type: ignore[call-overload]
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[[*COLUMNS, *extra]]


def read_jsonl(path: Path) -> pd.DataFrame:
    """Read a samples journal; a torn last line (crash mid-write) is ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                continue  # only the sample in flight can be torn (kill -9, power loss)
            msg = f"{path}:{number}: corrupt sample line (not the last one): {exc}"
            raise ValueError(msg) from exc
    if not rows:
        return empty_frame()
    return _coerce(pd.DataFrame.from_records(rows))


def load_environment(run_dir: Path) -> dict[str, Any]:
    """Return a run's ``environment.json`` (empty dict if missing)."""
    path = run_dir / ENVIRONMENT_JSON
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


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


def _read_parquet_dictionary(parquet: Path) -> pd.DataFrame | None:
    """Parquet with string columns as categoricals, or None for an older/partial file."""
    import pyarrow.parquet as pq  # noqa: PLC0415 - pandas already imported pyarrow

    if not set(COLUMNS) <= set(pq.read_schema(parquet).names):
        return None  # the generic path fills missing columns in
    strings = [name for name, dtype in COLUMNS.items() if dtype == "string"]
    frame: pd.DataFrame = pq.read_table(parquet, read_dictionary=strings).to_pandas()
    return frame


def load_run(
    run_dir: Path,
    *,
    categorical: bool = False,
    environment: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Load one run directory (Parquet if consolidated, else the journal).

    ``categorical=True`` keeps the string columns dictionary-encoded (several times faster
    at a million rows; statistics group on the codes). ``environment`` saves re-reading
    environment.json when the caller already has it.
    """
    parquet = run_dir / SAMPLES_PARQUET
    journal = run_dir / SAMPLES_JSONL
    env = load_environment(run_dir) if environment is None else environment
    host = host_key(env, run_dir.name)
    if categorical and parquet.exists():
        fast = _read_parquet_dictionary(parquet)
        if fast is not None:
            codes = np.zeros(len(fast), dtype=np.int8)
            fast["host"] = pd.Categorical.from_codes(codes, categories=pd.Index([host]))
            return fast
    if parquet.exists():
        frame = _coerce(pd.read_parquet(parquet))
    elif journal.exists():
        frame = read_jsonl(journal)
    else:
        msg = f"{run_dir}: not a run directory (no {SAMPLES_PARQUET} or {SAMPLES_JSONL})"
        raise FileNotFoundError(msg)
    frame["host"] = pd.Series([host] * len(frame), dtype="string", index=frame.index)
    return frame


def load(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Load any number of run directories into one tidy DataFrame (plus a ``host`` column)."""
    frames = [load_run(Path(p)) for p in paths]
    if not frames:
        frame = empty_frame()
        frame["host"] = pd.Series([], dtype="string")
        return frame
    return pd.concat(frames, ignore_index=True)
