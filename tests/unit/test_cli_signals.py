"""A stop signal during a command's heavy imports: held until they finish, then a clean 130."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import cli


def test_sigterm_during_a_heavy_import_is_raised_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A module that receives SIGTERM half-way through its own initialisation, as pandas'
    # or pydantic's would when the signal lands 0.35 s after `isobench run` started.
    (tmp_path / "isobench_heavy_probe.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(0.05)  # the handler would run here, cutting the import in two\n"
        "COMPLETE = True\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.HEAVY_IMPORTS, "backends", ("isobench_heavy_probe",))
    monkeypatch.delitem(sys.modules, "isobench_heavy_probe", raising=False)
    assert cli.main(["backends"]) == 130
    assert sys.modules["isobench_heavy_probe"].COMPLETE  # the import ran to its end
    assert "interrupted" in capsys.readouterr().err
