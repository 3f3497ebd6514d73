"""Sessions: bench (the main job), tests, lint, perf, envbuild.

python3 -m pip install nox && nox -s bench     # measure every backend, write a report
python3 -m pip install nox && nox -s tests     # the test suite
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11" if shutil.which("python3.11") else None
ROOT = Path(__file__).parent


def _is_debian_like() -> bool:
    os_release = Path("/etc/os-release")
    if not os_release.exists():
        return False
    text = os_release.read_text().lower()
    return "debian" in text or "ubuntu" in text


def _can_provision() -> bool:
    return platform.system() == "Linux" and os.geteuid() == 0 and _is_debian_like()


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Provision what is missing (root on Debian/Ubuntu), build the guest env, run, report.

    Extra arguments go to `isobench run`, e.g. `nox -s bench -- scenarios/syscall.yaml`.
    Set ISOBENCH_NO_PROVISION=1 to measure only what is already available.
    """
    session.install("-e", ".")
    if os.environ.get("ISOBENCH_NO_PROVISION") == "1":
        session.log("ISOBENCH_NO_PROVISION=1: not provisioning; measuring what is available")
    elif _can_provision():
        session.log("root on Debian/Ubuntu: provisioning missing engines (scripts/provision)")
        session.run("bash", "scripts/provision", external=True)
        session.log("building the guest environment (rootfs, Docker image, Vagrant box)")
        session.run("isobench", "env", "build", success_codes=[0, 1])
    else:
        session.log(
            "not root on Debian/Ubuntu: skipping provisioning; backends that are missing "
            "are listed below with the command that enables them"
        )
    session.run("isobench", "backends")
    out = ROOT / "results"
    before = set(out.glob("*/")) if out.exists() else set()
    # The plan and its time estimate first (previous runs of this host under results/ make it
    # precise), then the default profile: sized to finish within 10 minutes of measurement.
    session.run("isobench", "plan", "--profile", "default", "--out", str(out), *session.posargs)
    session.run(
        "isobench",
        "run",
        "--profile",
        "default",
        "--plain",
        "--out",
        str(out),
        *session.posargs,
        success_codes=[0, 1],  # 1: some item had no successful sample; the report says which
    )
    created = sorted(set(out.glob("*/")) - before)
    if not created:
        session.error("isobench run wrote no run directory")
    path = created[-1]
    session.run("isobench", "report", str(path), "-o", str(path / "report.html"))
    session.log(f"run directory: {path}")
    session.log(f"report: {path / 'report.html'}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit + integration tests (engines that are absent are skipped unless required)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "not perf and not calibration", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on bench/."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "bench", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "bench", "tests", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def perf(session: nox.Session) -> None:
    """The harness's own performance: report generation over 1,000,000 sample rows."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/perf", "-m", "perf", "--benchmark-only", *session.posargs)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Fault injection (kill -9, signals, full disk, corrupt files...): prints a table."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/faults", "-q", *session.posargs)


@nox.session(python=PYTHON)
def calibration(session: nox.Session) -> None:
    """Gate evidence on real runs (A/A quiet, the seccomp cost flagged): needs a quiet host."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "calibration", "-s", *session.posargs)


@nox.session(python=PYTHON)
def envbuild(session: nox.Session) -> None:
    """Build (or reuse) the guest rootfs, Docker image and Vagrant box."""
    session.install("-e", ".")
    session.run("isobench", "env", "build", *session.posargs)
