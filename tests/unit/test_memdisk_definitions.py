"""memory.environment (smaps_rollup), its difference to native, and the disk variant rules."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from bench import metrics, stats
from bench.backends.native.backend import HOST, NativeBackend
from bench.backends.native.placement import docker_data_root
from bench.report import export_summary, render_html, summary_table
from bench.scenario.model import DiskWorkload, parse_scenario
from bench.values import BackendError
from bench.workloads import ExecResult, disk_variant, fio_argv, run_disk
from bench.workloads.hostmem import (
    Rollup,
    environment_memory,
    parse_smaps_rollup,
    read_rollup,
    sum_rollups,
)

#: /proc/PID/smaps_rollup of a probe idling after touching 64 MiB (kernel 6.1, abridged).
PROBE_ROLLUP = """\
00400000-7ffd5b7fe000 ---p 00000000 00:00 0                              [rollup]
Rss:               66152 kB
Pss:               66088 kB
Pss_Dirty:         65600 kB
Pss_Anon:          65600 kB
Pss_File:            488 kB
Pss_Shmem:             0 kB
Shared_Clean:         64 kB
Shared_Dirty:          0 kB
Private_Clean:       488 kB
Private_Dirty:     65600 kB
Referenced:        66152 kB
Anonymous:         65600 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
"""
#: A containerd-shim-runc-v2 (Go binary: its text pages are shared with the other shims).
SHIM_ROLLUP = """\
55d0c8c00000-7ffc1e9f3000 ---p 00000000 00:00 0                          [rollup]
Rss:               13140 kB
Pss:                9370 kB
Pss_Anon:           8004 kB
Pss_File:           1366 kB
Pss_Shmem:             0 kB
Shared_Clean:       5020 kB
Shared_Dirty:          0 kB
Private_Clean:       116 kB
Private_Dirty:      8004 kB
Swap:                 12 kB
SwapPss:               8 kB
"""


def test_parse_smaps_rollup_gives_bytes() -> None:
    rollup = parse_smaps_rollup(PROBE_ROLLUP)
    assert rollup == Rollup(
        rss=66152 * 1024,
        pss=66088 * 1024,
        pss_anon=65600 * 1024,
        pss_file=488 * 1024,
        pss_shmem=0,
        private=(488 + 65600) * 1024,
        swap_pss=0,
    )


def test_parse_smaps_rollup_refuses_text_without_pss() -> None:
    with pytest.raises(ValueError, match="no Pss line"):
        parse_smaps_rollup("Rss: 12 kB\n")
    with pytest.raises(ValueError, match="unexpected unit"):
        parse_smaps_rollup("Pss: 12 MB\n")


def test_environment_sum_of_probe_and_shim() -> None:
    total = sum_rollups({42: parse_smaps_rollup(PROBE_ROLLUP), 7: parse_smaps_rollup(SHIM_ROLLUP)})
    assert total.pss == (66088 + 9370) * 1024
    assert total.rss == (66152 + 13140) * 1024
    assert total.private == (488 + 65600 + 116 + 8004) * 1024
    assert total.swap_pss == 8 * 1024
    assert total.pids == (7, 42)
    assert total.facts()["environment_pids"] == "7,42"


def test_read_rollup_from_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "smaps_rollup").write_text(PROBE_ROLLUP)
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "smaps_rollup").write_text("")  # a kernel thread has no mappings
    assert read_rollup(42, tmp_path) == parse_smaps_rollup(PROBE_ROLLUP)
    assert read_rollup(2, tmp_path) is None
    assert read_rollup(99, tmp_path) is None  # gone


def test_environment_memory_of_this_process_matches_its_smaps_rollup() -> None:
    expected = parse_smaps_rollup(Path("/proc/self/smaps_rollup").read_text()).pss
    measured = environment_memory([os.getpid(), os.getpid(), 2**22 + 12345])  # dup + gone
    assert measured.pids == (os.getpid(),)
    assert measured.pss == pytest.approx(expected, rel=0.05)


def test_memory_environment_is_catalogued_and_compared_by_difference() -> None:
    entry = metrics.lookup("memory.environment")
    assert entry is not None
    assert (entry.unit, entry.higher_is_better) == ("B", False)
    assert metrics.lookup("memory.overhead") is None  # derived in the summary, never emitted
    assert metrics.compared_by_difference("memory.environment")
    assert not metrics.compared_by_difference("startup.ready")


# --- the overhead: environment minus native, in bytes, with a CI -------------------------------

MiB = 1024.0**2


def _memory_frame(native: Sequence[float], docker: Sequence[float]) -> pd.DataFrame:
    rows = [("native", "host", v) for v in native] + [("docker", "runtime=runc", v) for v in docker]
    return pd.DataFrame.from_records(
        [
            {
                "run_id": "r1",
                "scenario": "memory",
                "scenario_hash": "abc",
                "backend": backend,
                "variant": variant,
                "metric": "memory.environment",
                "unit": "B",
                "repetition": i,
                "warmup": False,
                "value": value,
                "status": "ok",
                "reason": "",
                "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
                "host": "h",
            }
            for i, (backend, variant, value) in enumerate(rows)
        ]
    )


NATIVE_MIB = [64.6, 64.7, 64.5, 64.8, 64.6]
DOCKER_MIB = [76.4, 76.6, 76.5, 76.3, 76.7]


def test_difference_ci_brackets_the_difference_of_medians() -> None:
    mine, base = np.sort(np.array(DOCKER_MIB)), np.sort(np.array(NATIVE_MIB))
    low, high = stats.difference_ci(mine, base)
    assert low <= 76.5 - 64.6 <= high
    assert low >= 76.3 - 64.8  # bootstrap medians stay inside each sample's range
    assert high <= 76.7 - 64.5
    same = stats.difference_ci(base, base)
    assert same[0] < 0 < same[1]


def test_summary_carries_memory_overhead_in_bytes_with_ci() -> None:
    frame = _memory_frame([v * MiB for v in NATIVE_MIB], [v * MiB for v in DOCKER_MIB])
    table = summary_table(frame)
    docker = table[table["backend"] == "docker"].iloc[0]
    assert docker["difference"] == pytest.approx((76.5 - 64.6) * MiB)
    assert docker["difference_low"] <= docker["difference"] <= docker["difference_high"]
    markdown = export_summary(table, "markdown")
    docker_line = next(line for line in markdown.splitlines() if "| docker |" in line)
    assert "overhead +11.9 MiB [" in docker_line
    assert "\N{MULTIPLICATION SIGN}" not in docker_line  # no ratio of totals for memory


def test_html_memory_headline_shows_the_overhead_not_a_ratio() -> None:
    frame = _memory_frame([v * MiB for v in NATIVE_MIB], [v * MiB for v in DOCKER_MIB])
    page = render_html(frame, [])
    start = page.index('id="headline"')
    headline = page[start : page.index("</section>", start)]
    assert "overhead +11.9 MiB" in headline
    assert 'class="cell delta"' in headline
    assert "1.18\N{MULTIPLICATION SIGN}" not in headline


# --- disk: direct I/O on by default, off only as a labelled variant ---------------------------


def _disk_scenario(**workload: object) -> dict[str, object]:
    return {
        "format_version": 1,
        "name": "disk",
        "workload": {"kind": "disk", **workload},
    }


def test_direct_defaults_on_and_yaml_booleans_are_accepted() -> None:
    assert parse_scenario(_disk_scenario()).workload == DiskWorkload(kind="disk", direct="on")
    assert isinstance(parse_scenario(_disk_scenario(direct=True)).workload, DiskWorkload)
    off = parse_scenario(_disk_scenario(direct=False)).workload
    assert isinstance(off, DiskWorkload)
    assert off.direct == "off"


def test_direct_auto_is_refused_with_the_reason() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"'auto'.*removed.*direct=off"):
        parse_scenario(_disk_scenario(direct="auto"))


def test_direct_off_is_part_of_every_variant_label() -> None:
    on = parse_scenario(_disk_scenario())
    off = parse_scenario(_disk_scenario(direct="off"))
    assert isinstance(on.workload, DiskWorkload)
    assert isinstance(off.workload, DiskWorkload)
    assert disk_variant(on.workload) == {}
    assert disk_variant(off.workload) == {"direct": "off"}
    native = NativeBackend()
    assert list(native.variants(on)) == [HOST]
    assert [v.label for v in native.variants(off)] == ["direct=off"]


def test_fio_argv_direct_flag() -> None:
    workload = DiskWorkload(kind="disk", direct="on")
    argv = fio_argv(workload, "/d", direct=True)
    assert "--direct=1" in argv
    assert argv.count("--direct=0") == 1  # only the fsync job: fsync after buffered writes
    assert "--direct=0" in argv[argv.index("--name=fsync") :]
    buffered = fio_argv(workload, "/d", direct=False)
    assert "--direct=1" not in buffered


def test_direct_failure_is_a_failed_row_with_the_reason_not_a_fallback() -> None:
    calls: list[list[str]] = []

    def refuse_o_direct(argv: Sequence[str], timeout: float) -> ExecResult:
        calls.append(list(argv))
        return ExecResult(1, "", "fio: looks like your file system does not support direct=1", 0.1)

    with pytest.raises(BackendError, match=r"O_DIRECT.*does not support direct=1.*direct: off"):
        run_disk(refuse_o_direct, DiskWorkload(kind="disk"), "/mnt/x", 10.0)
    assert len(calls) == 1  # no silent second attempt with buffered I/O


def test_docker_data_root_comes_from_daemon_json(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    assert docker_data_root(config) == Path("/var/lib/docker")  # absent: the default
    config.write_text('{"data-root": "/srv/docker"}')
    assert docker_data_root(config) == Path("/srv/docker")
    config.write_text("not json")
    assert docker_data_root(config) == Path("/var/lib/docker")


def test_difference_ci_nan_without_samples() -> None:
    low, high = stats.difference_ci(np.zeros(0), np.array([1.0]))
    assert math.isnan(low)
    assert math.isnan(high)
