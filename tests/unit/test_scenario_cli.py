"""`isobench validate`: output lines, exit statuses, no tracebacks."""

from __future__ import annotations

import json
import re

import pytest

from bench import paths
from bench.cli import main
from bench.scenario.model import WORKLOAD_KINDS

GOOD = "format_version: 1\nname: {name}\nworkload:\n  kind: startup\n"


def test_default_directory_is_valid(capsys, monkeypatch):
    monkeypatch.chdir(paths.REPO_ROOT)
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(list((paths.REPO_ROOT / "scenarios").glob("*.yaml")))
    assert all(re.match(r"^ok \S+ \([0-9a-f]{12}\) scenarios/\S+\.yaml$", line) for line in lines)
    assert err == ""


def test_valid_file_prints_ok_name_hash_path(tmp_path, capsys):
    path = tmp_path / "a.yaml"
    path.write_text(GOOD.format(name="alpha"), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert re.fullmatch(rf"ok alpha \([0-9a-f]{{12}}\) {re.escape(str(path))}\n", out)


def test_invalid_file_exits_1_with_file_line_field_expectation(tmp_path, capsys):
    good = tmp_path / "a.yaml"
    good.write_text(GOOD.format(name="alpha"), encoding="utf-8")
    bad = tmp_path / "b.yaml"
    bad.write_text(GOOD.format(name="beta") + "repeat: -2\n", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("ok alpha (")
    assert f"error: {bad}:5:1: repeat: expected a value >= 1, got -2" in err
    assert "1 error(s) in 1 of 2 file(s)" in err
    assert "Traceback" not in out + err


def test_duplicate_names_across_files(tmp_path, capsys):
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.yaml").write_text(GOOD.format(name="same"), encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'b.yaml'}:2:1: name: duplicate scenario name 'same'" in err
    assert str(tmp_path / "a.yaml") in err
    assert out.startswith("ok same (")  # the first file is fine
    assert out.count("\n") == 1


def test_syntax_error_is_reported_not_raised(tmp_path, capsys):
    path = tmp_path / "a.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    _, err = capsys.readouterr()
    assert f"{path}:2:1: YAML syntax error" in err
    assert "Traceback" not in err


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "absent.yaml")]) == 2
    _, err = capsys.readouterr()
    assert "no such file or directory" in err


def test_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate", "--bogus"])
    assert info.value.code == 2


def test_json_output(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(GOOD.format(name="alpha"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("format_version: 1\nname: beta\n", encoding="utf-8")
    assert main(["validate", "--json", str(tmp_path)]) == 1
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False
    first, second = doc["files"]
    assert first["ok"] is True
    assert first["name"] == "alpha"
    assert re.fullmatch(r"[0-9a-f]{12}", first["hash"])
    assert second["errors"] == [
        {
            "line": 1,
            "column": 1,
            "field": "workload",
            "message": "missing required field 'workload'; expected a mapping with kind: one of"
            f" {', '.join(WORKLOAD_KINDS)}",
        }
    ]
