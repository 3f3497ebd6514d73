"""Faults around ownership: a harness killed with SIGKILL mid-workload, and leftovers that are
not ours (issue 14 item 1), against real processes and the real dockerd.

Each case starts a real ``isobench run`` in a child process, kills it with SIGKILL at a known
moment, and checks what survives; cleanup must take only what this host's dead harness left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bench import ownership
from bench.cli import main
from bench.envbuild.image import DockerUnreachableError, connect, image_exists, image_tag
from tests.engines import skip_or_fail

pytestmark = [pytest.mark.fault, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "313.25"  # a sleep length no one else uses: identifies the workload process


def write_scenario(directory: Path, name: str, command: list[str], backend: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(
        f"format_version: 1\nname: {name}\nbackends: [{backend}]\nrepeat: 1\nwarmup: 0\n"
        f"timeout: 600\nworkload: {{kind: command, command: {json.dumps(command)}}}\n"
    )
    return path


def start_harness(
    scenario: Path, backend: str, out: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench", "run", str(scenario), "-b", backend, "-o", str(out)]
    return subprocess.Popen(
        [*argv, "--plain"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(what: str, found: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout:g} s")


def gone(proc: psutil.Process) -> bool:
    """Dead (a zombie counts: the kernel killed it, init has not reaped it yet)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def workloads() -> list[psutil.Process]:
    """Live processes whose argv carries this module's marker."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(TOKEN in arg for arg in cmdline[1:]) and not gone(proc):
            out.append(proc)
    return out


#: Native workloads killed mid-run: a lone process, and fio (job processes, a data file).
FIO = ["fio", f"--name=fault-{TOKEN}", "--rw=randwrite", "--size=64m", "--time_based"]
NATIVE_CASES = {
    "sleep": ["sleep", TOKEN],
    "fio": [*FIO, "--runtime=300", "--directory=.", "--ioengine=psync"],
}


def environment(out: Path) -> dict[str, object]:
    (run_dir,) = out.iterdir()
    data: dict[str, object] = json.loads((run_dir / "environment.json").read_text())
    return data


@pytest.mark.parametrize("kind", sorted(NATIVE_CASES))
def test_kill_9_during_a_native_workload_leaves_no_process_and_no_scratch(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_row: Callable[..., None]
) -> None:
    if shutil.which(kind) is None:
        skip_or_fail(f"{kind} is not installed")
    cache = tmp_path / "cache"
    monkeypatch.setenv("ISOBENCH_CACHE", str(cache))
    scenario = write_scenario(tmp_path, "victim", NATIVE_CASES[kind], "native")
    harness = start_harness(scenario, "native", tmp_path / "killed", {"ISOBENCH_CACHE": str(cache)})
    try:
        wait_for(f"the {kind} workload", workloads, 60)
        time.sleep(1)  # fio: its job process has started and written data
        victims = workloads()
        scratch = cache / "scratch"
        (left,) = scratch.iterdir()  # the killed run's scratch, owned by the harness
        assert ownership.verdict(ownership.read_owner_file(left)).state == "alive"
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        start = time.monotonic()
        wait_for("the workload's death", lambda: all(gone(p) for p in victims), 10)
        died_after = time.monotonic() - start
    finally:
        harness.kill()
        harness.wait()
        for proc in workloads():
            proc.kill()
    data = sum(f.stat().st_size for f in left.rglob("*") if f.is_file())
    assert left.exists()  # SIGKILL ran no cleanup: the next run removes it
    assert ownership.verdict(ownership.read_owner_file(left)).state == "dead"

    quick = write_scenario(tmp_path, "quick", ["true"], "native")
    assert main(["run", str(quick), "-b", "native", "-o", str(tmp_path / "next"), "--plain"]) == 0
    assert not left.exists()
    assert list(scratch.iterdir()) == []  # the next run's own scratch is gone too
    warnings = environment(tmp_path / "next")["warnings"]
    assert any(left.name in w and "removed" in w for w in warnings)  # type: ignore[union-attr]
    fault_row(
        case=f"kill -9 of the harness during a native `{kind}` workload",
        outcome=f"{len(victims)} workload process(es) killed by the reaper "
        f"{died_after:.2f} s after the harness died",
        data_kept=f"scratch dir ({data} bytes) removed by the next run, noted in its "
        "environment.json",
        leftovers="none",
    )


# -- docker -----------------------------------------------------------------------------------


@pytest.fixture
def docker_client() -> Iterator[object]:
    try:
        client = connect(5)
    except DockerUnreachableError as exc:
        skip_or_fail(str(exc))
        raise
    if not image_exists(client, image_tag()):
        skip_or_fail("the isobench image is not built (isobench env build)")
    yield client
    client.close()


@pytest.mark.docker
def test_foreign_container_and_volume_survive_backends_and_clean(
    docker_client: object, capsys: pytest.CaptureFixture[str], fault_row: Callable[..., None]
) -> None:
    client = docker_client
    name = f"isobench-fault-foreign-{os.getpid()}"
    labels = {"isobench": "1", "isobench.owner": "1:1.00"}  # issue 14's reproduction
    container = client.containers.run(  # type: ignore[attr-defined]
        image_tag(), ["sleep", "300"], detach=True, labels=labels, name=name, network_mode="none"
    )
    volume = client.volumes.create(name=name, labels={"isobench": "1"})  # type: ignore[attr-defined]
    try:
        assert main(["backends"]) == 0
        assert main(["clean"]) == 0
        listed = capsys.readouterr().out
        assert main(["clean", "--yes"]) == 0
        container.reload()
        volume.reload()  # raises NotFound if it was removed
        assert container.status == "running"
        assert f"kept (not provably ours)   docker container   {name}" in listed
    finally:
        container.remove(force=True)
        volume.remove(force=True)
    fault_row(
        case="foreign container (owner 1:1.00) and unowned volume; `backends`, `clean`, "
        "`clean --yes`",
        outcome="listed as not provably ours, never removed",
        data_kept="both kept, container still running",
    )


@pytest.mark.docker
def test_dead_owner_container_is_removed_by_the_next_docker_run(
    docker_client: object, tmp_path: Path, fault_row: Callable[..., None]
) -> None:
    client = docker_client
    scenario = write_scenario(tmp_path, "sleepy", ["sleep", "300"], "docker")
    harness = start_harness(scenario, "docker", tmp_path / "killed", {})
    token_of = f":{harness.pid}:"

    def orphan() -> list[object]:
        found = client.containers.list(all=True, filters={"label": "isobench"}, sparse=True)  # type: ignore[attr-defined]
        return [c for c in found if token_of in c.attrs["Labels"].get("isobench.owner", "")]

    def exec_container() -> list[object]:
        return [c for c in orphan() if "-exec-" in c.attrs["Names"][0]]  # type: ignore[attr-defined]

    try:
        (container,) = wait_for("the exec container", exec_container, 120)  # type: ignore[misc]
        time.sleep(1)  # the workload is running in it now
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        assert ownership.verdict(container.attrs["Labels"]["isobench.owner"]).state == "dead"
        assert orphan()  # nothing removed it: the harness died without cleaning up

        quick = write_scenario(tmp_path, "quick", ["true"], "docker")
        assert main(["run", str(quick), "-b", "docker", "-o", str(tmp_path / "next")]) == 0
        assert orphan() == []
        notes = environment(tmp_path / "next")["backends"]["docker"]["notes"]  # type: ignore[index]
        name = container.attrs["Names"][0].lstrip("/")
        assert any(name in n and "removed" in n for n in notes)
    finally:
        harness.kill()
        harness.wait()
        for leftover in orphan():
            with contextlib.suppress(Exception):
                leftover.remove(force=True)  # type: ignore[attr-defined]
    fault_row(
        case="kill -9 of the harness during a docker workload",
        outcome="its exec container is removed at the next docker run's start",
        data_kept="the removal is in environment.json (backends.docker.notes) and the report",
        leftovers="none",
    )
