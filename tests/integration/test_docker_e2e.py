"""`isobench run --backend docker` end to end on the real dockerd: rows, timeouts, cleanup."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from bench import ownership
from bench.backends.docker.support import LABEL, OWNER_LABEL
from bench.cli import main
from bench.results import load

pytestmark = [pytest.mark.integration, pytest.mark.docker]

STARTUP = """\
format_version: 1
name: e2e-startup
workload: {kind: startup}
backends: [docker]
repeat: 2
warmup: 0
timeout: 60
"""

HUNG = """\
format_version: 1
name: e2e-hung
workload: {kind: command, command: [sleep, "60"]}
backends: [docker]
repeat: 1
warmup: 0
timeout: 1.5
"""


def ours(client: docker.DockerClient) -> list[str]:
    """Containers owned by this (test) process."""
    mine = f"{OWNER_LABEL}={ownership.current().token}"
    return [
        c.name or ""
        for c in client.containers.list(all=True, filters={"label": [f"{LABEL}=1", mine]})
    ]


@pytest.mark.usefixtures("docker_image")
def test_run_writes_docker_rows_and_leaves_no_container(
    docker_client: docker.DockerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "startup.yaml").write_text(STARTUP)
    (scenarios / "hung.yaml").write_text(HUNG)
    status = main(["run", str(scenarios), "--backend", "docker", "--out", str(tmp_path), "--plain"])
    out, err = capsys.readouterr()
    assert status == 1  # the hung scenario produced no successful sample, and run says so
    assert "no successful sample: e2e-hung docker/" in err
    assert "no successful sample: e2e-startup" not in err
    run_dir = Path(out.strip().splitlines()[-1])
    frame = load([run_dir])

    startup = frame[frame["scenario"] == "e2e-startup"]
    assert set(startup["backend"]) == {"docker"}
    assert set(startup["variant"]) == {
        "runtime=runc,network=none,seccomp=default",
        "runtime=runc,network=none,seccomp=default,path=cli",
    }
    assert (startup["status"] == "ok").all(), startup[startup["status"] != "ok"]["reason"].tolist()
    api = startup[startup["variant"] == "runtime=runc,network=none,seccomp=default"]
    assert {"startup.create", "startup.start", "startup.ready", "startup.exit"} <= set(
        api["metric"]
    )
    assert len(api[api["metric"] == "startup.total"]) == 2

    hung = frame[frame["scenario"] == "e2e-hung"]
    assert set(hung["status"]) == {"timeout"}
    assert ours(docker_client) == []
