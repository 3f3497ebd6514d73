"""By hand: read every run's Parquet file with pyarrow datasets vs DuckDB (not a timed test).

The site builder (:func:`bench.report.history.load_history`) reads all runs with one columnar
query. This script repeats that query with each engine over the data set of
``tests/perf/test_site_perf.py`` (1,000 runs x 500 rows over two hosts), each attempt in a
fresh process (the engine's import included), engines interleaved so that load
on a shared host hits both alike. Wall time and peak RSS come from ``wait4()``; the query's own
time (after imports) is printed by the child.

    python3 -m pip install duckdb       # only for this comparison: not a dependency
    PYTHONPATH=$PWD python3 -m tests.perf.read_engines [--rounds 5] [--history DIR]

Every engine ends with the same pandas frame the site uses (the same columns, string columns
as categoricals), so the comparison includes the conversion each engine needs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report.history import READ_COLUMNS
from tests import synthetic

RUNS = 1_000
ROWS = 500

#: Each engine: the child's code, run with the Parquet file list in ``files``.
ENGINES = {
    # What bench.report.history.load_history does today.
    "pyarrow": """
import pyarrow.dataset as ds
table = ds.dataset(files).to_table(columns=COLUMNS)
frame = table.to_pandas(strings_to_categorical=True)
""",
    # The same query, string columns read dictionary-encoded by the Parquet reader.
    "pyarrow-dict": """
import pyarrow.dataset as ds
fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=STRINGS))
table = ds.dataset(files, format=fmt).to_table(columns=COLUMNS)
frame = table.to_pandas()
""",
    # DuckDB's Parquet reader; its Arrow result converted as the site converts pyarrow's.
    "duckdb": """
import duckdb
query = "SELECT " + ", ".join(COLUMNS) + " FROM read_parquet($files)"
table = duckdb.sql(query, params={"files": files}).to_arrow_table()
frame = table.to_pandas(strings_to_categorical=True)
""",
    # DuckDB straight to pandas (object strings), then categoricals.
    "duckdb-df": """
import duckdb
query = "SELECT " + ", ".join(COLUMNS) + " FROM read_parquet($files)"
frame = duckdb.sql(query, params={"files": files}).df()
for name in STRINGS:
    frame[name] = frame[name].astype("category")
""",
}

CHILD = """
import json, sys, time
start = time.perf_counter()
import pandas
COLUMNS = json.loads(sys.argv[1])
STRINGS = [c for c in COLUMNS if c not in ("repetition", "warmup", "value")]
files = sys.argv[2:]
imported = time.perf_counter()
{code}
done = time.perf_counter()
assert len(frame) > 0 and list(frame.columns) == COLUMNS, frame.columns
print(f"{{imported - start:.3f}} {{done - imported:.3f}} {{len(frame)}}")
"""


def _once(engine: str, files: list[str]) -> dict[str, float]:
    code = CHILD.format(code=ENGINES[engine])
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(READ_COLUMNS), *files],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        msg = f"{engine} failed (status {status})"
        raise RuntimeError(msg)
    imports, query, rows = output.splitlines()[-1].split()
    return {
        "wall": wall,
        "imports": float(imports),
        "query": float(query),
        "rss": usage.ru_maxrss / 1024.0,
        "rows": float(rows),
    }


def main() -> None:
    """Measure every engine ``--rounds`` times, interleaved, and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=Path, help="reuse a generated history folder")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.history or Path(scratch) / "history"
        if not root.exists():
            synthetic.write_history(root, RUNS, ROWS, hosts=("ci-a", "ci-b"), report=True)
        files = sorted(str(p) for p in root.glob("*/samples.parquet"))
        figures: dict[str, list[dict[str, float]]] = {e: [] for e in args.engines}
        for _ in range(args.rounds):
            for engine in args.engines:
                figures[engine].append(_once(engine, files))
    print(f"{len(files)} Parquet files; load average {os.getloadavg()[0]:.1f}")
    print("| engine | wall s (median, min-max) | query s (median, min-max) | peak RSS MiB |")
    print("|---|---|---|---|")
    for engine, runs in figures.items():
        walls, queries = [r["wall"] for r in runs], [r["query"] for r in runs]
        rss = statistics.median(r["rss"] for r in runs)
        print(
            f"| {engine} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
            f"| {statistics.median(queries):.2f} ({min(queries):.2f}-{max(queries):.2f}) "
            f"| {rss:.0f} |"
        )


if __name__ == "__main__":
    main()
