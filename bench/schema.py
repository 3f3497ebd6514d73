"""The sample schema (columns, dtypes, statuses) and the readers that check it.

The journal and the Parquet file are read with every field's type checked against
:data:`COLUMNS` (a ``"warmup": "false"`` string is converted explicitly with a note, never
read as true); every error names the file, and the line for the journal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.storage import PARQUET_KEY, ResultsError, check_schema_version, kind_of

STATUSES: Final = ("ok", "failed", "timeout", "skipped")

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


# -- reading: the Parquet file ----------------------------------------------------------------


def _parquet_problems(schema: Any) -> list[str]:
    """What keeps an Arrow schema from being the sample schema (empty when it is)."""
    import pyarrow as pa  # noqa: PLC0415

    def text(t: Any) -> bool:
        if pa.types.is_dictionary(t):
            t = t.value_type
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t))

    checks = {
        "int64": pa.types.is_integer,
        "bool": pa.types.is_boolean,
        "float64": lambda t: (
            pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)
        ),
        "string": text,
        "datetime64[ns, UTC]": pa.types.is_timestamp,
    }
    names = set(schema.names)
    problems = [f"no column {name!r}" for name in COLUMNS if name not in names]
    for name, dtype in COLUMNS.items():
        if name in names and not checks[dtype](schema.field(name).type):
            problems.append(f"column {name!r} is {schema.field(name).type}, expected {dtype}")
    return problems


def parquet_metadata(path: Path, schema: Any) -> dict[str, Any]:
    """isobench's key-value metadata of a Parquet file ({} for a version 1 file)."""
    raw = (schema.metadata or {}).get(PARQUET_KEY)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path}: corrupt isobench metadata: {exc}"
        raise ResultsError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path}: isobench metadata must be a JSON object, found {kind_of(data)}"
        raise ResultsError(msg)
    check_schema_version(data.get("schema_version"), path)
    return data


def read_parquet(path: Path, *, categorical: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The samples and isobench metadata of a Parquet file, its schema checked first.

    ``categorical`` keeps the string columns dictionary-encoded. Raises :class:`ResultsError`
    (naming the file) for anything that is not an isobench samples file.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        schema = pq.read_schema(path)
        metadata = parquet_metadata(path, schema)
        problems = _parquet_problems(schema)
        if problems:
            msg = f"{path}: not an isobench samples file: {'; '.join(problems)}"
            raise ResultsError(msg)
        strings = [name for name, dtype in COLUMNS.items() if dtype == "string"]
        table = pq.read_table(path, read_dictionary=strings if categorical else None)
        frame: pd.DataFrame = table.to_pandas()
    except (OSError, pa.ArrowException) as exc:
        msg = f"{path}: not a readable Parquet file: {exc}"
        raise ResultsError(msg) from exc
    bad = ~frame["status"].isin(STATUSES)
    if bad.any():
        msg = f"{path}: unknown status {frame['status'][bad].iloc[0]!r} (expected one of "
        msg += f"{', '.join(STATUSES)})"
        raise ResultsError(msg)
    return (frame if categorical else coerce(frame)), metadata


# -- reading: the journal -----------------------------------------------------------------------


def empty_frame() -> pd.DataFrame:
    """An empty frame with the sample schema."""
    return coerce(pd.DataFrame({name: [] for name in COLUMNS}))


def coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the schema's dtypes and column order (extra columns kept, at the end)."""
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


#: pandas.api.types.infer_dtype results that need no per-row look (the fast path).
_INFERRED: Final[dict[str, tuple[str, ...]]] = {
    "string": ("string",),
    "int64": ("integer",),
    "bool": ("boolean",),
    "float64": ("floating", "integer", "mixed-integer-float", "empty"),
}
_TRUTH: Final = {"true": True, "false": False, "1": True, "0": False}


def _valid(dtype: str, value: object) -> bool:
    if dtype == "string" or dtype.startswith("datetime"):
        return isinstance(value, str)
    if dtype == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if dtype == "bool":
        return isinstance(value, bool)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _check_column(frame: pd.DataFrame, name: str, where: list[str]) -> None:
    """Raise naming the first line whose ``name`` field has the wrong type."""
    dtype = COLUMNS[name]
    column = frame[name]
    if dtype != "float64" and column.isna().any():  # pandas may have turned None into NaN
        position = int(column.isna().to_numpy().argmax())
        msg = f"{where[position]}: field {name!r} must be {dtype.split('[')[0]}, found missing"
        raise ResultsError(msg)
    inferred = pd.api.types.infer_dtype(column, skipna=dtype == "float64")
    if inferred in _INFERRED.get(dtype, ("string",)):
        return
    for position, value in enumerate(column):
        if not _valid(dtype, value):
            absent = value is None or (isinstance(value, float) and math.isnan(value))
            shown = "missing" if absent else f"{kind_of(value)} {value!r}"
            msg = f"{where[position]}: field {name!r} must be {dtype.split('[')[0]}, found {shown}"
            raise ResultsError(msg)


def _coerce_warmup(frame: pd.DataFrame, where: list[str], notes: list[str]) -> None:
    """Read "true"/"false" (and 0/1) warm-up flags explicitly, with a note; refuse the rest."""
    column = frame["warmup"]
    if pd.api.types.infer_dtype(column, skipna=False) == "boolean":
        return
    fixed: list[bool] = []
    coerced: list[str] = []
    for position, value in enumerate(column):
        if isinstance(value, bool):
            fixed.append(value)
            continue
        key = str(value).strip().lower() if isinstance(value, str | int) else None
        if key not in _TRUTH:
            msg = f"{where[position]}: field 'warmup' must be a boolean, found "
            msg += f"{kind_of(value)} {value!r}"
            raise ResultsError(msg)
        fixed.append(_TRUTH[key])
        coerced.append(f"{where[position]} ({value!r} read as {str(_TRUTH[key]).lower()})")
    frame["warmup"] = fixed
    notes.append(f"warm-up flags that are not booleans were converted: {', '.join(coerced[:5])}")


def typed_rows(rows: list[dict[str, Any]], where: list[str], notes: list[str]) -> pd.DataFrame:
    """Journal records as the sample frame, every field's type checked (``where``: file:line)."""
    frame = pd.DataFrame.from_records(rows)
    if "reason" not in frame:
        frame["reason"] = ""
    frame["reason"] = frame["reason"].where(frame["reason"].notna(), "")
    for name in COLUMNS:
        if name not in frame:
            msg = f"{where[0]}: field {name!r} is missing"
            raise ResultsError(msg)
    _coerce_warmup(frame, where, notes)
    for name in COLUMNS:
        if name != "warmup":
            _check_column(frame, name, where)
    bad = ~frame["status"].isin(STATUSES)
    if bad.any():
        position = int(bad.to_numpy().argmax())
        msg = f"{where[position]}: status {frame['status'].iloc[position]!r} is not one of "
        msg += ", ".join(STATUSES)
        raise ResultsError(msg)
    stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601", errors="coerce")
    if stamps.isna().any():
        position = int(stamps.isna().to_numpy().argmax())
        msg = f"{where[position]}: timestamp {frame['timestamp'].iloc[position]!r} is not ISO 8601"
        raise ResultsError(msg)
    return coerce(frame)


def read_journal(path: Path, notes: list[str]) -> pd.DataFrame:
    """Read a samples journal, every line checked; errors name the file and the line.

    Only a last line without its newline can be torn (the harness died while writing it): it
    is left out with a note when it does not parse.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read: {exc.strerror or exc}"
        raise ResultsError(msg) from exc
    lines = data.split(b"\n")
    rows: list[dict[str, Any]] = []
    where: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            if number == len(lines):  # no newline after it: the line in flight
                notes.append(f"{path}:{number}: torn last line left out (the harness stopped "
                             "while writing it)")  # fmt: skip
                continue
            msg = f"{path}:{number}: corrupt sample line: {exc}"
            raise ResultsError(msg) from exc
        if not isinstance(record, dict):
            msg = f"{path}:{number}: expected a JSON object (one sample), "
            msg += f"found {kind_of(record)}"
            raise ResultsError(msg)
        rows.append(record)
        where.append(f"{path}:{number}")
    if not rows:
        return empty_frame()
    return typed_rows(rows, where, notes)
