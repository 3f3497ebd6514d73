"""Native measured before and after a VM block: the report warns when it moved."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench import report, results, schema
from bench.report import drift


def native_rows(values: list[float]) -> pd.DataFrame:
    records: list[dict[str, Any]] = [
        {
            "run_id": "R",
            "scenario": "startup",
            "scenario_hash": "h",
            "backend": "native",
            "variant": "host",
            "metric": "startup.total",
            "unit": "s",
            "repetition": i,
            "warmup": False,
            "value": v,
            "status": "ok",
            "reason": "",
            "timestamp": "2026-01-01T00:00:00+00:00",
        }
        for i, v in enumerate(values)
    ]
    frame = schema.coerce(pd.DataFrame.from_records(records))
    return frame.assign(host=results.host_key(ENV))


BLOCK = {
    "scenario": "startup",
    "backend": "vagrant",
    "variant": "accel=tcg",
    "native_before": 2,
    "native_after": 3,
}
ENV: dict[str, Any] = {
    "run_id": "R",
    "host": {"hostname": "h", "identity": {"fingerprint": "f" * 16, "label": "h"}},
    "order": {"seed": 5, "blocks": [BLOCK]},
}


def test_native_that_moved_across_the_block_is_flagged() -> None:
    frame = native_rows([1.00, 1.01, 0.99, 1.50, 1.52])
    (found,) = drift.native_drift(frame, [ENV])
    assert (found.before, found.after) == (0.99, 1.50)
    assert found.noise == pytest.approx(0.02)  # the largest other consecutive step
    assert found.moved
    assert found.change == pytest.approx(0.51 / 0.99)
    html = report.render_html(frame, [ENV])
    assert (
        "native startup.total (startup) changed +51.5% across the vagrant/accel=tcg block" in html
    )
    assert "the host changed while the block ran" in html


def test_native_within_its_noise_is_reported_not_flagged() -> None:
    frame = native_rows([1.00, 1.05, 0.99, 1.02, 0.97])
    (found,) = drift.native_drift(frame, [ENV])
    assert not found.moved
    html = report.render_html(frame, [ENV])
    assert "the host changed while the block ran" not in html
    assert "across the vagrant/accel=tcg block" in html  # listed under "Order and native drift"


def test_runs_without_order_or_native_neighbours_have_no_drift() -> None:
    frame = native_rows([1.0, 1.1])
    assert drift.native_drift(frame, [{"run_id": "R"}]) == []
    lonely = {**ENV, "order": {"blocks": [{**BLOCK, "native_before": None}]}}
    assert drift.native_drift(frame, [lonely]) == []
    (short,) = drift.native_drift(native_rows([1.0, 1.0, 1.0, 2.0]), [ENV])
    assert np.isfinite(short.noise)
    (two,) = drift.native_drift(native_rows([1.0, 1.0, 1.0, 2.0]).query("repetition >= 2"), [ENV])
    assert not two.moved  # no other step to compare with: reported, never flagged
