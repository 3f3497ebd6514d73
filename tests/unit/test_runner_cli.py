"""`isobench run` and `isobench backends` through bench.cli.main, with a fake backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import backends as registry
from bench.cli import main
from bench.results import ResultsWarning, load
from bench.run import runner as runner_module
from tests.fake_backend import FAKE_SCENARIO, FakeBackend, FakeScript, register_fake, use_fake

IDENTITY = {"fingerprint": "00c0ffee00c0ffee", "label": "testhost", "basis": "machine-id"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    script = FakeScript(values={"startup.ready": 0.5})
    return use_fake(monkeypatch, script, {"hostname": "testhost", "identity": IDENTITY})


def write(directory: Path, name: str, text: str | None = None) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text if text is not None else FAKE_SCENARIO.format(name=name))
    return path


def test_run_prints_run_directory_last_on_stdout(
    fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write(tmp_path, "one")
    status = main(["run", str(scenario), "--backend", "fake", "--out", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert status == 0
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "r"
    assert f"run directory: {run_dir}" in err
    df = load([run_dir])
    assert len(df) == (1 + 3) * 2
    assert set(df["host"]) == {"testhost (00c0ffee)"}
    seed = json.loads((run_dir / "environment.json").read_text())["order"]["seed"]
    assert f"order seed: {seed}" in err  # a fresh seed, always recorded


def test_seed_is_settable_and_recorded(
    fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(write(tmp_path, "one")), "-b", "fake", "-o", str(tmp_path / "r")]
    assert main([*argv, "--seed", "42"]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    order = json.loads((run_dir / "environment.json").read_text())["order"]
    assert order["seed"] == 42
    assert order["blocks"] == []  # the fake backend interleaves
    with pytest.raises(SystemExit):
        main([*argv, "--seed", "-3"])


def test_directory_argument_and_repeat_override(
    fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    write(scenarios, "one")
    write(scenarios, "two")
    argv = ["run", str(scenarios), "-b", "fake", "--repeat", "1", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    df = load([run_dir])
    assert sorted(df["scenario"].unique()) == ["one", "two"]
    assert len(df[~df["warmup"]]) == 2 * 1 * 2
    assert sorted(p.name for p in (run_dir / "scenarios").iterdir()) == ["one.yaml", "two.yaml"]


def test_invalid_scenario_exits_1_and_writes_nothing(
    fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "good")
    bad = write(
        tmp_path, "bad", FAKE_SCENARIO.format(name="bad").replace("repeat: 3", "repeat: -1")
    )
    out_dir = tmp_path / "r"
    status = main(["run", str(good), str(bad), "-b", "fake", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert status == 1
    assert "bad.yaml" in err
    assert "repeat" in err
    assert "Traceback" not in err
    assert out == ""
    assert not out_dir.exists()
    assert fake.calls == []


def test_unknown_backend_exits_2_with_the_list(
    fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write(tmp_path, "one")
    status = main(["run", str(scenario), "--backend", "nope", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 2
    assert "nope" in err
    assert "native" in err
    assert "fake" in err
    assert not (tmp_path / "r").exists()


def test_nothing_to_run_when_backend_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_fake("fake", FakeScript(available=False))
    try:
        scenario = write(tmp_path, "one")
        status = main(["run", str(scenario), "-b", "fake", "--out", str(tmp_path / "r")])
    finally:
        registry.unregister("fake")
    err = capsys.readouterr().err
    assert status == 1
    assert "backend fake unavailable: fake backend scripted as unavailable" in err
    assert "nothing to run" in err
    assert not (tmp_path / "r").exists()


def test_ctrl_c_exits_130_and_keeps_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        runner_module, "host_info", lambda: {"hostname": "testhost", "identity": IDENTITY}
    )
    register_fake("fake", FakeScript(interrupt={2}))
    try:
        scenario = write(tmp_path, "one")
        status = main(["run", str(scenario), "-b", "fake", "--out", str(tmp_path / "r")])
    finally:
        registry.unregister("fake")
    out, err = capsys.readouterr()
    assert status == 130
    assert "run interrupted" in err
    run_dir = Path(out.strip().splitlines()[-1])
    assert (run_dir / "samples.parquet").exists()
    with pytest.warns(ResultsWarning, match="incomplete run: it was interrupted"):
        assert len(load([run_dir])) == 2 * 2
    assert json.loads((run_dir / "environment.json").read_text())["interrupted"] is True
    assert json.loads((run_dir / "end.json").read_text())["state"] == "interrupted"


def test_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--repeat", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_backends_lists_every_backend_with_reason_and_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_fake("fake", FakeScript(available=False))
    try:
        assert main(["backends"]) == 0
        table = capsys.readouterr().out
        assert main(["backends", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
    finally:
        registry.unregister("fake")
    for name in ("native", "docker", "vagrant", "fake"):
        assert name in table
        assert name in data
    assert data["native"]["available"] is True
    assert data["fake"] == {
        "available": False,
        "reason": "fake backend scripted as unavailable",
        "hint": "nothing to do",
    }
    assert "fake backend scripted as unavailable  (enable: nothing to do)" in table
