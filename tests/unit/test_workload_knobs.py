"""fio jobs, the json/regex/sysbench parsers, requires and ignored settings, on literal data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
import pytest

from bench import metrics, workloads
from bench.envbuild import rootfs
from bench.scenario.fields import selector_steps
from bench.scenario.loader import parse_text
from bench.scenario.model import (
    CommandWorkload,
    DiskWorkload,
    Scenario,
    parse_scenario,
    storage_variants,
)
from bench.values import BackendError, BackendUnavailable
from bench.workloads import ExecResult, contract, parse_sysbench, run_command
from bench.workloads.fio import check_engines, fio_job_argv, parse_fio_jobs
from bench.workloads.parsers import parse_json, parse_regex

QD32 = {"name": "rr", "rw": "randread", "bs": "4KiB", "iodepth": 32, "ioengine": "libaio"}


def scenario(workload: dict[str, Any], **top: Any) -> Scenario:
    return parse_scenario({"format_version": 1, "name": "s", "workload": workload, **top})


def disk(*jobs: dict[str, Any], **options: Any) -> DiskWorkload:
    workload = scenario({"kind": "disk", "jobs": list(jobs), **options}).workload
    assert isinstance(workload, DiskWorkload)
    return workload


def command(**options: Any) -> CommandWorkload:
    workload = scenario({"kind": "command", "command": ["tool"], **options}).workload
    assert isinstance(workload, CommandWorkload)
    return workload


# -- fio jobs --------------------------------------------------------------------------------


def test_randread_qd32_is_three_lines_and_becomes_plain_fio_options() -> None:
    workload = disk(QD32, runtime=60)
    argv = fio_job_argv(workload, "/d")
    job = argv[argv.index("--name=rr") :]
    assert job == [
        "--name=rr",
        "--stonewall",
        "--rw=randread",
        "--bs=4096",
        "--ioengine=libaio",
        "--iodepth=32",
        "--numjobs=1",
    ]
    assert "--direct=1" in argv
    assert "--runtime=60000ms" in argv
    assert "--group_reporting=1" in argv  # numjobs clones reported as one job
    assert contract(workload) == (
        "disk.rr.read_bw",
        "disk.rr.read_iops",
        "disk.rr.read_lat_p50",
        "disk.rr.read_lat_p99",
    )


def test_randrw_mix_and_per_job_runtime() -> None:
    mix = {"name": "mix", "rw": "randrw", "rwmixread": 70, "numjobs": 4, "runtime": 2}
    argv = fio_job_argv(disk(mix, runtime=5), "/d")
    assert {"--rwmixread=70", "--numjobs=4", "--runtime=2000ms", "--runtime=5000ms"} <= set(argv)
    assert len(contract(disk(mix))) == 8  # read and write figures


def test_without_jobs_the_builtin_jobs_and_hash_are_unchanged() -> None:
    plain = scenario({"kind": "disk"})
    assert "jobs" not in plain.model_dump()["workload"]
    assert contract(plain.workload) == workloads.CONTRACT["disk"]


@pytest.mark.parametrize(
    ("job", "options", "expected"),
    [
        ({**QD32, "ioengine": "psync"}, {}, "psync would be ignored"),
        ({**QD32, "rwmixread": 50}, {}, "rwmixread applies to rw: randrw only"),
        (QD32, {"direct": "off"}, "libaio without direct I/O submits synchronously"),
        ({**QD32, "bs": "128MiB"}, {}, "larger than file_size"),
        ({**QD32, "name": "a.b"}, {}, "no dots"),
        ({**QD32, "rw": "trim"}, {}, "Input should be"),
        ({**QD32, "ioengine": "mmap"}, {}, "libaio. or .io_uring"),
        ({**QD32, "bs": 100}, {}, "at least 512B"),
    ],
)
def test_jobs_refuse_what_fio_would_ignore(
    job: dict[str, Any], options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=expected):
        disk(job, **options)


def test_job_names_are_unique() -> None:
    with pytest.raises(pydantic.ValidationError, match="listed twice"):
        disk(QD32, {**QD32, "iodepth": 1, "ioengine": "psync"})


FIO_JOBS_JSON = json.dumps(
    {
        "jobs": [
            {
                "jobname": "rr",
                "error": 0,
                "read": {
                    "io_bytes": 4096000,
                    "bw_bytes": 2.4e8,
                    "iops": 58593.75,
                    "clat_ns": {"percentile": {"50.000000": 337920, "99.000000": 5963776}},
                },
                "write": {"io_bytes": 0, "bw_bytes": 0, "iops": 0},
            }
        ]
    }
)


def test_parse_fio_jobs_reads_bandwidth_iops_and_latency_percentiles() -> None:
    values = {m.metric: m.value for m in parse_fio_jobs("note\n" + FIO_JOBS_JSON, disk(QD32))}
    assert values == {
        "disk.rr.read_bw": 2.4e8,
        "disk.rr.read_iops": 58593.75,
        "disk.rr.read_lat_p50": pytest.approx(337920e-9),
        "disk.rr.read_lat_p99": pytest.approx(5963776e-9),
    }
    for name in values:
        entry = metrics.lookup(name)
        assert entry is not None
        assert entry.higher_is_better == (not name.endswith(("p50", "p99")))


def test_parse_fio_jobs_refuses_a_job_without_io() -> None:
    write = {"name": "rr", "rw": "randwrite", "iodepth": 32, "ioengine": "libaio"}
    with pytest.raises(BackendError, match="reported no writes"):
        parse_fio_jobs(FIO_JOBS_JSON, disk(write))


def test_engine_check_turns_a_refused_io_uring_into_unavailable() -> None:
    calls: list[list[str]] = []

    def seccomp_refuses(argv: Sequence[str], timeout: float) -> ExecResult:
        calls.append(list(argv))
        if any(a == "--ioengine=io_uring" for a in argv):
            err = "fio: pid=11, err=1/file:engines/io_uring.c:998, func=io_queue_init, error=EPERM"
            return ExecResult(1, "{}", err, 0.01)
        return ExecResult(0, "", "", 0.01)

    workload = disk({**QD32, "ioengine": "io_uring"})
    with pytest.raises(BackendUnavailable, match=r"io_uring is not usable.*io_queue_init"):
        check_engines(seccomp_refuses, workload, "/d", 10.0)
    assert calls[-1][:2] == ["rm", "-f"]  # the check file is removed either way
    calls.clear()
    check_engines(seccomp_refuses, disk({**QD32, "ioengine": "psync", "iodepth": 1}), "/d", 1.0)
    assert calls == []  # psync needs no check


# -- command parsers ---------------------------------------------------------------------------

IPERF_LIKE = 'Connecting...\n{"end": {"sum_received": {"bits_per_second": 8e9}}, "x": [1, 2]}'


def test_json_parser_selects_declared_metrics_with_scale() -> None:
    workload = command(
        parser="json",
        metrics=[
            {
                "name": "net.rx",
                "unit": "B/s",
                "direction": "higher",
                "select": "end.sum_received.bits_per_second",
                "scale": 0.125,
            },
            {"name": "net.second", "unit": "1", "direction": "lower", "select": "x[1]"},
        ],
    )
    measured = parse_json(IPERF_LIKE, workload)
    assert [(m.metric, m.value, m.unit) for m in measured] == [
        ("net.rx", 1e9, "B/s"),
        ("net.second", 2.0, "1"),
    ]


def test_json_selector_syntax() -> None:
    assert selector_steps('jobs[0].clat_ns.percentile["99.000000"]') == (
        "jobs",
        0,
        "clat_ns",
        "percentile",
        "99.000000",
    )
    for bad in ("", ".a", "a..b", "a[x]", "a b"):
        with pytest.raises(ValueError, match="selector"):
            selector_steps(bad)


def test_json_parser_names_a_missing_path() -> None:
    workload = command(
        parser="json",
        metrics=[{"name": "m", "unit": "s", "direction": "lower", "select": "end.nope"}],
    )
    with pytest.raises(BackendError, match=r"metric 'm': end.nope not found"):
        parse_json(IPERF_LIKE, workload)


def test_regex_parser_takes_the_last_match_stdout_then_stderr() -> None:
    workload = command(
        parser="regex",
        pattern=r"copied, (?P<secs>[\d.]+) s, (?P<rate>[\d.]+) MB/s",
        metrics=[
            {"name": "dd.secs", "unit": "s", "direction": "lower", "group": "secs"},
            {"name": "dd.rate", "unit": "MB/s", "direction": "higher", "group": "rate"},
        ],
    )
    stderr = "1 bytes copied, 9 s, 1 MB/s\n100 bytes copied, 0.5 s, 200 MB/s\n"
    measured = parse_regex("", stderr, workload)
    assert {m.metric: m.value for m in measured} == {"dd.secs": 0.5, "dd.rate": 200.0}
    with pytest.raises(BackendError, match="matched nothing"):
        parse_regex("nothing here", "", workload)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"parser": "regex", "metrics": []}, "needs metrics"),
        ({"parser": "regex", "pattern": "(?P<a>x)", "metrics": []}, "needs metrics"),
        ({"parser": "regex", "pattern": "no groups"}, "named groups"),
        (
            {
                "parser": "regex",
                "pattern": "(?P<a>1)(?P<b>2)",
                "metrics": [{"name": "m", "unit": "s", "direction": "lower", "group": "a"}],
            },
            "'b' of pattern is not declared",
        ),
        (
            {
                "parser": "json",
                "metrics": [{"name": "m", "unit": "s", "direction": "lower"}],
            },
            "needs select",
        ),
        ({"parser": "sysbench", "pattern": "(?P<a>1)"}, "read by parser regex only"),
        (
            {
                "parser": "wall",
                "metrics": [{"name": "m", "unit": "s", "direction": "lower", "select": "a"}],
            },
            "select is read by parser json only",
        ),
    ],
)
def test_parser_settings_that_would_be_ignored_are_refused(
    options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=expected):
        command(**options)


SYSBENCH_MEMORY = """
Total operations: 13506 ( 6722.15 per second)

13506.00 MiB transferred (6722.15 MiB/sec)

Latency (ms):
         min:                                    0.04
         avg:                                    0.15
"""
SYSBENCH_FILEIO = """
File operations:
    reads/s:                      2780.44
    writes/s:                     1853.63
    fsyncs/s:                     186.84

Throughput:
    read, MiB/s:                  43.44
    written, MiB/s:               28.96
"""


def test_sysbench_memory_and_fileio_figures() -> None:
    memory = {m.metric: (m.value, m.unit) for m in parse_sysbench(SYSBENCH_MEMORY)}
    assert memory["command.memory_bw"] == (6722.15, "MiB/s")
    assert memory["command.memory_ops_rate"] == (6722.15, "ops/s")
    assert memory["command.latency_avg"] == (pytest.approx(0.15e-3), "s")
    fileio = {m.metric: m.value for m in parse_sysbench(SYSBENCH_FILEIO)}
    assert fileio == {
        "command.fileio_reads_rate": 2780.44,
        "command.fileio_writes_rate": 1853.63,
        "command.fileio_fsyncs_rate": 186.84,
        "command.fileio_read_bw": 43.44,
        "command.fileio_write_bw": 28.96,
    }
    for name in (*memory, *fileio):
        assert name in workloads.EMITS
        assert metrics.lookup(name) is not None


def test_run_command_dispatches_to_the_declaring_parsers() -> None:
    workload = command(
        parser="json",
        metrics=[{"name": "n.rx", "unit": "b/s", "direction": "higher", "select": "x[0]"}],
    )

    def execute(argv: Sequence[str], timeout: float) -> ExecResult:
        return ExecResult(0, IPERF_LIKE, "", 0.25)

    outcome = run_command(execute, workload, 5.0)
    assert [(m.metric, m.value) for m in outcome.measurements] == [
        ("command.wall", 0.25),
        ("n.rx", 1.0),
    ]
    assert contract(workload) == ("command.wall", "n.rx")


# -- on/off, requires, ignored settings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "on"), (False, "off"), ("on", "on"), ("OFF", "off"), ("On", "on"), ("yes", "on")],
)
def test_on_off_spellings(value: object, expected: str) -> None:
    plain = scenario({"kind": "disk", "direct": value}).workload
    assert isinstance(plain, DiskWorkload)
    assert plain.direct == expected


def test_on_off_refuses_other_values() -> None:
    for bad in (1, "maybe", "auto"):
        with pytest.raises(pydantic.ValidationError):
            scenario({"kind": "disk", "direct": bad})


def test_requires_is_validated_and_left_out_of_the_hash() -> None:
    base = scenario({"kind": "command", "command": ["iperf3"]})
    with_tool = scenario({"kind": "command", "command": ["iperf3"]}, requires=["iperf3"])
    assert with_tool.requires == ("iperf3",)
    assert with_tool.hash == base.hash
    for bad in (["Iperf3"], ["x"], ["iperf3", "iperf3"], "iperf3"):
        with pytest.raises(pydantic.ValidationError):
            scenario({"kind": "command", "command": ["x"]}, requires=bad)


def _file(text: str) -> list[str]:
    return [str(e) for e in parse_text(text, Path("s.yaml")).errors]


def test_storage_and_network_lists_that_would_be_ignored_are_refused() -> None:
    head = "format_version: 1\nname: s\n"
    errors = _file(head + "workload: {kind: syscall}\ndocker:\n  storage: [volume]\n")
    assert errors == [
        "s.yaml:5:3: docker.storage: the syscall workload does not use storage, so this list "
        "would be ignored; expected it only on disk and command workloads (remove it)"
    ]
    errors = _file(head + "workload: {kind: disk}\ndocker:\n  network: [bridge]\n")
    assert errors[0].startswith("s.yaml:5:3: docker.network: the disk workload does not use")
    assert (
        _file(head + "workload: {kind: command, command: [x]}\ndocker: {storage: [volume]}\n") == []
    )


def test_command_storage_variants_only_when_listed() -> None:
    plain = scenario({"kind": "command", "command": ["x"]})
    assert storage_variants(plain) == ()  # runs on overlay, labels unchanged
    listed = scenario(
        {"kind": "command", "command": ["x"]}, docker={"storage": ["overlay", "volume"]}
    )
    assert storage_variants(listed) == ("overlay", "volume")
    assert storage_variants(scenario({"kind": "disk"})) == ("overlay", "volume")


def test_requirement_problems_name_the_package_and_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ISOBENCH_CACHE", str(tmp_path))
    source = Path("scenarios/net.yaml")
    problems = rootfs.requirement_problems(("fio", "cowsay"), ["native", "docker"], source)
    assert problems == [
        (
            1,
            "package 'cowsay' is not in the guest environment that docker run(s) in (rootfs, "
            "image, box); add it with: isobench env build scenarios/net.yaml",
        )
    ]
    assert rootfs.requirement_problems(("cowsay",), ["native"], source) == []
    (tmp_path / rootfs.EXTRAS_FILE).write_text('{"extra": ["cowsay"]}')
    assert rootfs.requirement_problems(("cowsay",), ["docker"], source) == []
    assert "cowsay" in rootfs.guest_packages()
