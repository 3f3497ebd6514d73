"""The HTML report and the summary exports, on synthetic frames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench import cli, report, results
from bench.report import env as report_env
from bench.report import format as report_format
from tests import synthetic as report_synthetic

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return report_synthetic.synthetic_frame(1500)


def test_untrusted_strings_are_escaped(frame: pd.DataFrame) -> None:
    hostile = frame.copy()
    hostile["scenario"] = hostile["scenario"].replace({"disk-fio": XSS}).astype("string")
    env = report_synthetic.synthetic_environment()
    env["scenarios"][XSS] = env["scenarios"].pop("disk-fio")
    env["host"]["cpu_model"] = '"><img src=x onerror=alert(2)>'
    env["backends"]["docker"]["engine"] = "</td><script>alert(3)</script>"
    html = report.render_html(hostile, [env])
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


def test_report_has_every_section_and_self_contained(frame: pd.DataFrame) -> None:
    html = report.render_html(frame, [report_synthetic.synthetic_environment()])
    for anchor in (
        'id="headline"',
        'id="family-startup"',
        'id="family-syscall"',
        'id="family-disk"',
        'id="family-memory"',
        'id="failures"',
        'id="served"',
    ):
        assert anchor in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert html.count("data:image/svg+xml;base64,") >= 10
    assert "default-src 'none'" in html
    # caveats: TCG banner, virtualized host banner, the run's own warning
    assert "TCG software emulation" in html
    assert "is itself virtualized" in html
    assert report_synthetic.SYNTHETIC_WARNING in html
    # host kernel vs kernel seen in the VM
    assert "6.1.0-28-cloud-amd64" in html
    assert "own kernel" in html
    assert "same kernel" in html


def test_several_hosts_merge_with_host_as_dimension(frame: pd.DataFrame) -> None:
    other = report_synthetic.synthetic_frame(1500, seed=5, host="second-host")
    other["run_id"] = "synthetic-0002"
    merged = pd.concat([frame, other], ignore_index=True)
    table = report.summary_table(merged)
    envs = [
        report_synthetic.synthetic_environment(),
        report_synthetic.synthetic_environment("second-host", "synthetic-0002"),
    ]
    assert set(table["host"]) == {results.host_key(env) for env in envs}
    html = report.render_html(merged, envs)
    assert "<th>host</th>" in html
    assert "Run synthetic-0002" in html


def test_summary_exports(frame: pd.DataFrame) -> None:
    table = report.summary_table(frame)
    csv = report.export_summary(table, "csv")
    assert csv.splitlines()[0].startswith("host,scenario,backend,variant,metric,unit")
    data = json.loads(report.export_summary(table, "json"))
    assert len(data["summary"]) == len(table)
    docker = [
        r for r in data["summary"] if r["backend"] == "docker" and r["metric"] == "startup.total"
    ]
    assert docker
    assert all(r["ratio"] > 1 for r in docker)
    markdown = report.export_summary(table, "markdown")
    assert markdown.splitlines()[1].startswith("|---|")
    with pytest.raises(ValueError, match="unknown format"):
        report.export_summary(table, "xml")


def test_cli_report_formats_and_bad_input(frame: pd.DataFrame, tmp_path: Path) -> None:
    run = report_synthetic.write_run(
        tmp_path / "run", frame, report_synthetic.synthetic_environment()
    )
    out = tmp_path / "r.html"
    assert cli.main(["report", str(run), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    md = tmp_path / "r.md"
    assert cli.main(["report", str(run), "--format", "markdown", "-o", str(md)]) == 0
    assert "| host |" in md.read_text()
    assert cli.main(["report", str(tmp_path / "missing"), "-o", str(out)]) == 2


def test_empty_and_all_failed_runs_render() -> None:
    frame = report_synthetic.synthetic_frame(200)
    frame["status"] = "failed"
    frame["reason"] = "backend crashed"
    html = report.render_html(frame, [{}])
    assert "No successful measurement" in html
    assert "backend crashed" in html


def test_environment_helpers_are_defensive() -> None:
    assert report_env.host_facts({})[0] == ("run", report_format.DASH)
    assert report_env.kernel_rows({"observed": "junk"}, [("docker", "x")])[0]["same"] is None
    assert report_env.backend_rows({"backends": {"docker": None}})[0]["available"] is None
    assert report_env.banners({}, []) == []
    nested = report_env.banners({"backends": {"vagrant": {"host_virtualized": True}}}, [])
    assert "virtualized" in nested[0]
    tcg = {"backends": {"vagrant": {"accelerator": "tcg"}}}
    assert report_env.banners(tcg, [("native", "host")]) == []  # no VM measured: no banner
    assert "TCG" in report_env.banners(tcg, [("vagrant", "cpus=2")])[0]
    assert report_env.mitigation_summary({"a": "Vulnerable", "b": "Not affected"}).endswith("(a)")


def test_streams_sent_under_different_congestion_controls_are_flagged() -> None:
    def env(vm: object) -> dict[str, object]:
        return {
            "host": {"hostname": "h"},
            "observed": {
                "native": {"host": {"net_stream_congestion": "bbr"}},
                "docker": {"network=bridge": {"net_stream_congestion": ["bbr"]}},
                "vagrant": {"client=inside": {"net_stream_congestion": vm}},
            },
        }

    (mixed,) = report_env.banners(env("cubic"), [])
    assert "different congestion controls (bbr: docker/network=bridge, native/host; " in mixed
    assert "cubic: vagrant/client=inside)" in mixed
    assert report_env.banners(env("bbr"), []) == []  # one algorithm: nothing to say
    assert report_env.banners(env("unknown"), []) == []  # an older probe said nothing


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.00123, "s", "1.23 ms"),
        (28.8, "s", "28.8 s"),
        (3.5e6, "calls/s", "3.5 M calls/s"),
        (1.5 * 1024**3, "B/s", "1.5 GiB/s"),
        (float("nan"), "s", report_format.DASH),
    ],
)
def test_value_formatting(value: float, unit: str, text: str) -> None:
    assert report_format.value(value, unit) == text


@pytest.mark.parametrize(
    ("ratio", "low", "high", "css"),
    [
        (1.02, 1.01, 1.03, "ok"),
        (1.3, 1.2, 1.4, "mild"),
        (2.0, 1.8, 2.2, "costly"),
        (40.0, 35.0, 45.0, "severe"),
        (1.3, 0.9, 1.7, "unclear"),  # CI includes 1: no measurable difference
        (float("nan"), float("nan"), float("nan"), "unclear"),
    ],
)
def test_ratio_colour(ratio: float, low: float, high: float, css: str) -> None:
    assert report_format.ratio_class(ratio, low, high) == css


def test_fast_parquet_loader_matches_generic_loader(frame: pd.DataFrame, tmp_path: Path) -> None:
    run = report_synthetic.write_run(
        tmp_path / "run", frame, report_synthetic.synthetic_environment()
    )
    fast, envs = report.load_runs([run])
    assert envs[0]["run_id"] == "synthetic-0001"
    generic = results.load([run])
    keys = ["host", "scenario", "backend", "variant", "metric"]
    numbers = ["n", "median", "ci_low", "ci_high", "ratio", "ratio_low", "ratio_high"]
    a = report.summary_table(fast)[keys + numbers].astype(dict.fromkeys(keys, str))
    b = report.summary_table(generic)[keys + numbers].astype(dict.fromkeys(keys, str))
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    # a journal-only (interrupted) run still loads through bench.results
    journal_only = tmp_path / "journal"
    journal_only.mkdir()
    (journal_only / results.SAMPLES_JSONL).write_text(
        '{"run_id":"j","scenario":"s","scenario_hash":"h","backend":"native","variant":"host",'
        '"metric":"startup.total","unit":"s","repetition":0,"warmup":false,"value":1.0,'
        '"status":"ok","reason":"","timestamp":"2026-01-01T00:00:00+00:00"}\n'
    )
    merged, _ = report.load_runs([run, journal_only])
    assert len(merged) == len(frame) + 1
    assert "<!DOCTYPE html>" in report.render_html(merged, [{}, {}])
