"""An installed wheel works outside the checkout (select with ``-m wheel``; about a minute).

The wheel is built from a copy of the package sources (the checkout stays clean), installed
into a fresh venv (``--system-site-packages`` only to reuse pandas & co.; the venv's own
``bench`` must win), and driven from an empty directory: nothing of the checkout is on the
path there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "syscall.yaml"

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(300)]


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "Vagrantfile"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "scripts", source / "scripts", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "bench", source / "bench", symlinks=True, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    dist = base / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source),
                  "-w", str(dist)], base, env)  # fmt: skip
    assert built.returncode == 0, built.stderr
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], base, env)
    assert made.returncode == 0, made.stderr
    wheel = next(dist.glob("isobench-*.whl"))
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q",
                str(wheel)], base, env)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    empty = base / "empty"
    empty.mkdir()
    return venv, empty, env


def test_the_venv_imports_the_installed_package_not_the_checkout(installed) -> None:
    venv, empty, env = installed
    code = (
        "import bench, bench.paths as p; print(bench.__file__); "
        "print(p.resource('Vagrantfile')); print(p.resource('scripts/provision'))"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code], empty, env)
    assert out.returncode == 0, out.stderr
    module, vagrantfile, provision = (Path(line) for line in out.stdout.split())
    assert venv in module.parents
    for shipped, original in ((vagrantfile, "Vagrantfile"), (provision, "scripts/provision")):
        assert venv in shipped.parents
        assert not shipped.is_symlink()  # a copy, not a link back into the checkout
        assert shipped.read_bytes() == (ROOT / original).read_bytes()


def test_backends_works_outside_the_checkout(installed) -> None:
    venv, empty, env = installed
    out = _run([str(venv / "bin" / "isobench"), "backends", "--json"], empty, env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"native", "docker", "vagrant"}
    assert "Traceback" not in out.stderr


def test_validate_works_outside_the_checkout(installed) -> None:
    venv, empty, env = installed
    shutil.copy2(SCENARIO, empty / "mine.yaml")
    out = _run([str(venv / "bin" / "isobench"), "validate", "mine.yaml"], empty, env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok syscall (")
    # a bare command finds no scenarios here and says so (never the checkout's)
    bare = _run([str(venv / "bin" / "isobench"), "validate"], empty, env)
    assert bare.returncode == 2
    assert "no scenarios/ directory in" in bare.stderr
