"""The everyday command line (issue 12): plan/dry-run, filters, verbosity, counts, exit codes,
report output, help, completion. Through ``bench.cli.main`` with the fake backend."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bench.cli import COMMANDS, main
from bench.commands import progress
from bench.run.plan import plan
from bench.scenario.model import parse_scenario
from tests.fake_backend import FAKE_SCENARIO, FakeBackend, FakeScript, use_fake

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    monkeypatch.setattr("bench.sysinfo.host_identity", lambda: {"fingerprint": "f"})
    script = FakeScript(values={"startup.ready": 0.5}, variants=("a", "b"))
    return use_fake(monkeypatch, script, {"hostname": "h", "identity": {"fingerprint": "f"}})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "one.yaml").write_text(FAKE_SCENARIO.format(name="one"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_dir_of(out: str) -> Path:
    return Path(out.strip().splitlines()[-1])


def test_dry_run_prints_the_plan_with_default_estimates_and_runs_nothing(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--dry-run", "-b", "fake"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["scenario", "backend", "variant", "warm-up", "reps"]
    assert lines[1].split()[:5] == ["one", "fake", "a", "1", "3"]
    assert lines[2].split()[:5] == ["one", "fake", "b", "1", "3"]
    assert lines[1].split()[-1] == "default"
    assert "total (default profile): 2 items, 8 repetitions, expected" in lines[-1]
    assert "0 of 2 items estimated from this host's previous runs" in lines[-1]
    assert fake.calls == []
    assert not (workdir / "results").exists()
    assert main(["plan", "-b", "fake"]) == 0
    assert capsys.readouterr().out == out  # `plan` is the same as `run --dry-run`


def test_plan_estimates_from_previous_runs_of_this_host(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script.sleep = 0.05
    assert main(["run", "-b", "fake", "-q"]) == 0
    run_dir = run_dir_of(capsys.readouterr().out)
    timing = json.loads((run_dir / "environment.json").read_text())["timing"]
    assert {(u["backend"], u["variant"], len(u["rep_s"]), len(u["warmup_s"])) for u in
            timing["units"]} == {("fake", "a", 3, 1), ("fake", "b", 3, 1)}  # fmt: skip
    assert all(0.05 <= s < 1 for u in timing["units"] for s in u["rep_s"])
    log = (run_dir / "runner.log").read_text()
    assert log.count(" item one fake/") == 8  # every repetition's wall time
    assert main(["plan", "-b", "fake", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {i["source"] for i in plan["items"]} == {"history"}
    assert all(0.05 <= i["seconds_per_repetition"] < 1 for i in plan["items"])
    # another host's runs do not count
    env = json.loads((run_dir / "environment.json").read_text())
    env["host"]["identity"]["fingerprint"] = "other"
    (run_dir / "environment.json").write_text(json.dumps(env))
    assert main(["plan", "-b", "fake", "--json"]) == 0
    assert {i["source"] for i in json.loads(capsys.readouterr().out)["items"]} == {"default"}


def test_filters_select_and_errors_print_the_subcommands_usage(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-b", "fake", "-k", "variant=b", "--json"]) == 0
    assert [i["variant"] for i in json.loads(capsys.readouterr().out)["items"]] == ["b"]
    assert main(["plan", "-b", "fake", "-k", "!variant=a", "--json"]) == 0
    assert [i["variant"] for i in json.loads(capsys.readouterr().out)["items"]] == ["b"]
    assert main(["run", "-b", "fake", "-k", "colour=red"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: isobench run")
    assert "unknown filter field 'colour'" in err
    assert main(["run", "-b", "fake", "-k", "backend=docker"]) == 2
    err = capsys.readouterr().err
    assert "selects nothing" in err
    assert "one/fake/a" in err
    assert fake.calls == []


def test_unknown_option_is_reported_under_the_subcommand_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--dry-runn"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: isobench run")
    assert "isobench run: error: unrecognized arguments: --dry-runn" in err


def test_quiet_verbose_and_one_count(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-b", "fake", "-q"]) == 0
    err = capsys.readouterr().err
    assert "[1/" not in err
    assert "run complete: 12 measured, 4 warm-up, 0 failed, 0 skipped samples" in err
    assert main(["run", "-b", "fake", "-v", "--plain"]) == 0
    err = capsys.readouterr().err
    assert err.count("startup.ready=") == 8
    assert "startup.total=" in err  # -v: every metric, not only the first


def test_run_exits_1_and_names_items_without_a_successful_sample(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = parse_scenario(yaml.safe_load(FAKE_SCENARIO.format(name="one")))
    order = plan([scenario], {"fake": fake}, seed=7)  # the order the run will follow
    fake.script.fail = {n for n, item in enumerate(order) if item.variant.label == "a"}
    status = main(["run", "-b", "fake", "-q", "--seed", "7"])
    out, err = capsys.readouterr()
    assert status == 1
    failed = [line for line in err.splitlines() if line.startswith("no successful sample")]
    assert failed == ["no successful sample: one fake/a"]
    assert "1 item(s) produced no successful sample" in err
    assert "run complete: 6 measured, 2 warm-up, 8 failed, 0 skipped samples" in err
    assert run_dir_of(out).is_dir()  # the samples are kept all the same


def test_counts_are_the_same_in_run_report_and_compare(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script.fail = {3}
    assert main(["run", "-b", "fake", "-q"]) == 0
    out, err = capsys.readouterr()
    count = "10 measured, 4 warm-up, 2 failed, 0 skipped samples"  # rows: 2 metrics each
    assert f"run complete: {count}" in err
    run_dir = run_dir_of(out)
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    assert f"report: {count}" in capsys.readouterr().err
    main(["compare", str(run_dir), str(run_dir)])
    err = capsys.readouterr().err
    assert f"base: {count}" in err
    assert f"new: {count}" in err


def test_report_goes_into_the_run_directory_or_stdout_and_never_overwrites(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-b", "fake", "-q"]) == 0
    run_dir = run_dir_of(capsys.readouterr().out)
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not (workdir / "report.html").exists()
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: isobench report")
    assert "exists; pass --force" in err
    assert main(["report", str(run_dir), "--force"]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| host | scenario |")
    assert not list(workdir.glob("report.*"))
    assert main(["report", str(run_dir), str(run_dir)]) == 2
    assert "several run directories" in capsys.readouterr().err


def test_missing_paths_exit_2_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = str(tmp_path / "absent")
    for argv in (
        ["run", absent],
        ["plan", absent],
        ["validate", absent],
        ["report", absent],
        ["export", absent],
        ["compare", absent, absent],
    ):
        assert main(argv) == 2, argv
        assert absent in capsys.readouterr().err


def test_bare_run_without_scenarios_here_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"no scenario files given and no scenarios/ directory in {tmp_path}" in err
    assert not (tmp_path / "results").exists()


def test_profiles_and_adaptive_repetitions(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-b", "fake", "--profile", "quick", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    assert {(i["warmups"], i["repetitions"], i["max_repetitions"]) for i in items} == {(0, 1, 1)}
    assert main(["plan", "-b", "fake", "--profile", "publish", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    assert {(i["warmups"], i["repetitions"], i["max_repetitions"]) for i in items} == {(1, 10, 30)}
    # values base + index: 1e6 + i is precise (to 1e-5) once n = 6, the first 95 % interval
    fake.script.values = {"startup.ready": 1e6, "startup.total": 1e6}
    assert main(["run", "-b", "fake", "-q", "--precision", "1%", "--max-repeat", "9"]) == 0
    run_dir = run_dir_of(capsys.readouterr().out)
    adaptive = json.loads((run_dir / "environment.json").read_text())["adaptive"]
    assert {(a["variant"], a["repetitions"], a["capped"]) for a in adaptive} == {
        ("a", 6, False),
        ("b", 6, False),
    }


def test_adaptive_items_that_hit_the_cap_are_named_in_run_and_report(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # values 0.5 + index: the interval never narrows to 1 % of the median
    assert main(["run", "-b", "fake", "-q", "--precision", "0.01", "--max-repeat", "7"]) == 0
    out, err = capsys.readouterr()
    assert "reached max_repeat before the requested precision: one fake/a" in err
    run_dir = run_dir_of(out)
    assert len(fake.calls) == 2 * (1 + 7)
    assert main(["report", str(run_dir), "-o", "-"]) == 0
    html = capsys.readouterr().out
    assert "2 item(s) reached max_repeat before the requested precision" in html
    assert "time per backend" in html


def test_precision_needs_a_unit_or_a_fraction(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("5", "abc", "0", "150%"):
        with pytest.raises(SystemExit) as info:
            main(["run", "--precision", bad])
        assert info.value.code == 2
        assert "expected a relative precision such as 5% or 0.05" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_a_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: isobench {command}" in text
    assert "examples:" in text
    assert f"isobench {command}" in text.split("examples:", 1)[1]


def test_env_status_says_built_stale_or_missing_per_artefact(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["env", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    states = {line.split()[0]: line.split()[1] for line in lines[:3]}
    assert set(states) <= {"rootfs", "image", "box"}
    assert "rootfs" in states
    assert set(states.values()) <= {"built", "stale", "missing", "unknown"}


def test_shell_completion_offers_subcommands_and_options(tmp_path: Path) -> None:
    completions = tmp_path / "out"
    for line, expected in (("isobench pl", "plan"), ("isobench run --pro", "--profile")):
        env = os.environ | {
            "_ARGCOMPLETE": "1",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(completions),
            "PYTHONPATH": str(ROOT),
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench"], env=env, check=False, cwd=tmp_path, timeout=60
        )
        assert done.returncode == 0
        assert expected in completions.read_text().split()


def test_eta_counts_down_the_plan_and_calibrates_on_the_elapsed_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    eta = progress.Eta({("s", "b", "v"): (10.0, 20.0)}, total=20.0 + 4 * 10.0)
    item = SimpleNamespace(
        scenario=SimpleNamespace(name="s"), backend="b", variant=SimpleNamespace(label="v")
    )
    clock[0] = 130.0  # the first repetition (with its setup) took 30 s, as expected
    eta.done(item)  # type: ignore[arg-type]
    assert eta.text() == "eta 30 s"
    clock[0] = 190.0  # the second took 60 s instead of 10: the rest is scaled by 90/40
    eta.done(item)  # type: ignore[arg-type]
    assert eta.text() == "eta 45 s"


def test_plain_progress_lines_carry_the_eta(
    fake: FakeBackend, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-b", "fake", "--plain"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 8
    assert re.match(r"\[1/8\] one fake/[ab] warmup 1/1: startup\.ready=0\.5 s", lines[0])
    assert "(eta " in lines[0]
