"""The published site (bench.report.site, `isobench publish`) and the at-a-glance figure."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import stats
from bench.cli import main
from bench.report import glance, site, trend
from bench.report import history as site_history
from tests import synthetic

XSS = "<script>alert(1)</script>"


def _table(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [("h", "s", b, v, f"{f}.x", f, r, lo, hi) for b, v, f, r, lo, hi in rows],
        columns=["host", "scenario", "backend", "variant", "metric", "family", "ratio",
                 "ratio_low", "ratio_high"],
    )  # fmt: skip


def test_glance_cell_is_the_geometric_mean_and_marks_unclear_cells():
    table = _table(
        [
            ("docker", "runc", "syscall", 2.0, 1.5, 2.5),
            ("docker", "runc", "syscall", 0.5, 0.3, 0.8),
            ("docker", "runc", "disk", 1.05, 0.9, 1.2),
            ("docker", "runc", "disk", 0.98, 0.8, 1.1),
            ("vagrant", "tcg", "disk", 4.0, np.nan, np.nan),
            ("native", "host", "disk", 1.0, np.nan, np.nan),
        ]
    )
    [fig] = glance.glance(table, ("native", "docker", "vagrant"))
    assert fig.columns == ("docker runc", "vagrant tcg")
    assert fig.families == ("syscall", "disk")
    syscall = fig.cells[("syscall", "docker runc")]
    assert syscall.ratio == pytest.approx(1.0)  # 2x and 0.5x cancel out
    assert not syscall.unclear  # both CIs exclude 1
    assert fig.cells[("disk", "docker runc")].unclear
    no_ci = fig.cells[("disk", "vagrant tcg")]
    assert no_ci.with_ci == 0
    assert not no_ci.unclear


def test_glance_colour_is_centred_on_one_and_symmetric_in_log():
    assert glance.colour(1.0) == "rgb(255,255,255)"
    red, blue = glance.colour(10.0), glance.colour(0.1)
    assert red != blue
    assert glance.colour(1000.0) == glance.colour(100.0)  # saturates
    assert glance.colour(float("nan")) == glance.colour(-1.0)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history")
    # Run reports exist (as `nox -s bench` leaves them) except run 1's, which is rendered.
    runs = synthetic.write_history(
        root, 4, 600, hosts=("ci-a", "ci-a", "ci-a", "ci-b"), report=True
    )
    (runs[1] / "report.html").unlink()
    flagged = [{"scenario": "syscall-rate", "backend": "docker", "metric": "syscall.null_rate",
                "verdict": "regression"}]  # fmt: skip
    (runs[2] / site_history.COMPARE_JSON).write_text(json.dumps(flagged))
    env = json.loads((runs[1] / "environment.json").read_text())
    env["interrupted"] = True
    (runs[1] / "environment.json").write_text(json.dumps(env))
    env = json.loads((runs[3] / "environment.json").read_text())
    env["host"]["identity"]["label"] = XSS  # hostile text from a results folder stays text
    (runs[3] / "environment.json").write_text(json.dumps(env))
    return root


def test_ratios_are_computed_within_each_run(history: Path):
    loaded = site_history.load_history(site_history.discover([history]))
    table = site_history.run_ratios(loaded)
    assert set(table["run_id"]) == {r.run_id for r in loaded.runs}
    frame = loaded.frame
    row = table[(table["run_id"] == "synthetic-00003") & (table["metric"] == "syscall.null_rate")
                & (table["variant"].str.startswith("runtime=runc"))].iloc[0]  # fmt: skip
    ok = frame[(frame["run_id"] == "synthetic-00003") & (frame["status"] == "ok")
               & ~frame["warmup"] & (frame["metric"] == "syscall.null_rate")]  # fmt: skip
    native = ok[ok["backend"] == "native"]["value"].median()
    docker = ok[ok["variant"].astype(str) == str(row["variant"])]["value"].median()
    assert row["ratio"] == pytest.approx(native / docker)  # throughput: native / backend
    mine = np.sort(ok[ok["variant"].astype(str) == str(row["variant"])]["value"].to_numpy())
    base = np.sort(ok[ok["backend"] == "native"]["value"].to_numpy())
    assert (row["ratio_low"], row["ratio_high"]) == pytest.approx(stats.ratio_ci(base, mine))


@pytest.fixture(scope="module")
def built(history: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("site")
    return out, site.build_site([history], out)


def test_site_pages_links_and_hosts(built: tuple[Path, list[Path]]):
    out, pages = built
    names = {p.name for p in pages}
    assert {"index.html", "hosts.html", "trend-syscall.html", "trend-startup.html"} <= names
    index = (out / "index.html").read_text()
    assert index.count('<table class="glance">') == 2  # one figure per host
    assert "incomplete" in index
    assert XSS not in index
    assert "&lt;script&gt;" in index  # host ci-b's label, escaped
    assert re.search(r'class="flag">1<', index)  # run 2's compare.json regression
    for page in out.glob("*.html"):
        text = page.read_text()
        assert "http://" not in text
        assert "https://" not in text
        for href in re.findall(r'href="([^"#]+)"', text):
            assert (out / href).is_file(), f"{page.name} links to missing {href}"
    assert len(list((out / "runs").glob("*.html"))) == 4
    trend = (out / "trend-syscall.html").read_text()
    assert trend.count("data:image/svg+xml;base64,") >= 4  # 2 hosts x 2 syscall metrics


def test_rebuild_reuses_run_reports(history: Path, built: tuple[Path, list[Path]]):
    out, _ = built
    reports = sorted((out / "runs").glob("*.html"))
    before = [r.stat().st_mtime_ns for r in reports]
    site.build_site([history], out)
    assert [r.stat().st_mtime_ns for r in reports] == before


def test_publish_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    one = synthetic.write_history(tmp_path / "one", 1, 300, report=True)[0]
    assert main(["publish", str(one), "-o", str(tmp_path / "s")]) == 0
    assert "index.html" in capsys.readouterr().out
    assert main(["publish", str(tmp_path / "missing"), "-o", str(tmp_path / "t")]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["publish", str(empty), "-o", str(tmp_path / "u")]) == 2
    assert "no run directories" in capsys.readouterr().err


def _trend_svg(points: int) -> str:
    rows = pd.DataFrame(
        {
            "started": pd.date_range("2026-01-01", periods=points, freq="h", tz="UTC"),
            "ratio": np.linspace(1.1, 1.3, points),
            "ratio_low": np.linspace(1.0, 1.2, points),
            "ratio_high": np.linspace(1.2, 1.4, points),
            "backend": "docker",
            "variant": "runtime=runc",
            "run_id": [f"r{i}" for i in range(points)],
            "scenario": "s",
        }
    )
    uri = trend.trend_plot(rows, "syscall.null_rate", {"r1": {"s/docker/syscall.null_rate"}})
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def test_trend_dots_per_run_only_for_short_series():
    short = _trend_svg(10)
    long = _trend_svg(trend.MARKER_POINTS + 1)
    assert short.count("<use") >= 10  # a dot per run (and the regression ring)
    assert long.count("<use") < short.count("<use")
    assert long.count("<use") >= 1  # the flagged run keeps its ring
