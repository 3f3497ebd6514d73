"""Result schema and storage: one row per sample, appended as measured, loaded as pandas.

A run directory (``results/<run-id>/``, created exclusively) holds ``samples.jsonl`` (the
journal: one line per sample, handed to the kernel as it is measured, so a killed harness loses
at most the sample in flight), ``samples.parquet`` (the consolidated rows, with the schema
version and host identity in its metadata), ``environment.json``, ``scenarios/`` and, written
last and atomically, ``end.json``: a run without it did not finish. The file rules live in
:mod:`bench.storage`, the schema and its checked readers in :mod:`bench.schema`.

The package, in reading order:

* :mod:`~bench.results.writer`: :class:`Sample`, the run directory and :class:`RunWriter`;
* :mod:`~bench.results.state`: how a run ends (consolidation, end marker) and its state;
* :mod:`~bench.results.hosts`: the host key of a run (:func:`host_key`);
* :mod:`~bench.results.reader`: :func:`load` reads any number of run directories into one
  tidy frame; :func:`read_run` also says how each run ended and what the loader noticed, and
  can consolidate a run whose harness died from its journal;
* :mod:`~bench.results.counts`: the one way to count rows (:class:`Counts`).

Callers use the package as one namespace (``results.load``, ``from bench.results import
RunWriter``): the names below are its public API.
"""

from __future__ import annotations

from bench.results.counts import Counts, count_frame, count_row
from bench.results.hosts import host_key, host_name
from bench.results.reader import (
    LoadedRun,
    ResultsWarning,
    consolidate,
    load,
    load_environment,
    load_run,
    read_jsonl,
    read_run,
)
from bench.results.state import STATE_TEXT, run_state
from bench.results.writer import RunWriter, Sample, Status, create_run_dir, new_run_id
from bench.schema import COLUMNS, STATUSES, empty_frame
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
)

__all__ = [
    "COLUMNS",
    "END_MARKER",
    "ENVIRONMENT_JSON",
    "SAMPLES_JSONL",
    "SAMPLES_PARQUET",
    "SCHEMA_VERSION",
    "STATE_TEXT",
    "STATUSES",
    "Counts",
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
    "count_frame",
    "count_row",
    "create_run_dir",
    "empty_frame",
    "host_key",
    "host_name",
    "load",
    "load_environment",
    "load_run",
    "new_run_id",
    "read_jsonl",
    "read_run",
    "run_state",
]
