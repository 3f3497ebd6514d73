"""The metric catalog: every metric the built-in parsers emit has a direction and a unit."""

from __future__ import annotations

import pytest

from bench import metrics
from bench.workloads import CONTRACT, parse_fio_generic, parse_sysbench

SYSBENCH_OUTPUT = """
CPU speed:
    events per second:  3469.12
Latency (ms):
         min:                                    0.27
         avg:                                    0.29
         max:                                   26.20
         95th percentile:                        0.30
"""


def test_every_contract_metric_is_catalogued():
    for names in CONTRACT.values():
        for name in names:
            assert metrics.lookup(name) is not None, name


def test_sysbench_metrics_have_catalog_units_and_directions():
    found = {m.metric: m for m in parse_sysbench(SYSBENCH_OUTPUT)}
    assert found["command.events_rate"].value == pytest.approx(3469.12)
    assert found["command.latency_p95"].value == pytest.approx(0.30e-3)
    for name, measurement in found.items():
        entry = metrics.lookup(name)
        assert entry is not None, name
        assert entry.unit == measurement.unit
    assert metrics.higher_is_better("command.events_rate")
    assert not metrics.higher_is_better("command.latency_avg")


def test_uncatalogued_throughputs_are_higher_is_better():
    fio = (
        '{"jobs": [{"jobname": "j", "read": {"io_bytes": 10, "bw_bytes": 5, "iops": 2},'
        ' "write": {"io_bytes": 0}}]}'
    )
    names = [m.metric for m in parse_fio_generic(fio)]
    assert names == ["command.j.read_bw", "command.j.read_iops"]
    assert all(metrics.higher_is_better(n) for n in names)
    assert not metrics.higher_is_better("command.wall")
    assert not metrics.higher_is_better("something.unknown")
