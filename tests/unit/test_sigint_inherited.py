"""A test run started with SIGINT ignored still lets the Ctrl-C tests deliver SIGINT
(tests/conftest.py); without that conftest, the same check fails."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

CHECK = textwrap.dedent(
    """
    import signal, subprocess, sys

    def test_handler_and_child() -> None:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        child = subprocess.run(
            [sys.executable, "-c",
             "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"],
            capture_output=True, text=True, check=True,
        )
        assert child.stdout.strip() == "False"
    """
)


def _ignore_sigint() -> None:  # as a background job of a non-interactive shell starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pytest_with_sigint_ignored(where: Path) -> subprocess.CompletedProcess[str]:
    (where / "pytest.ini").write_text("[pytest]\n")
    (where / "test_check.py").write_text(CHECK)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_check.py"],
        check=False,
        cwd=where,
        capture_output=True,
        text=True,
        preexec_fn=_ignore_sigint,
        timeout=120,
    )


def test_sigint_is_not_ignored_in_the_tests() -> None:
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def test_the_conftest_restores_sigint_for_tests_and_children(tmp_path: Path) -> None:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    done = _pytest_with_sigint_ignored(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_it_sigint_stays_ignored(tmp_path: Path) -> None:
    done = _pytest_with_sigint_ignored(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "assert " in done.stdout
