"""fio jobs, json/regex commands in the storage under test, and ``requires:``, on real engines.

Native runs everywhere; the Docker cases need dockerd and the isobench image. Every run goes
through ``isobench run`` (the CLI), so validation, planning and the row contract are the real
ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pandas as pd
import pytest

from bench import ownership
from bench.backends.docker.support import LABEL, OWNER_LABEL
from bench.cli import main
from bench.results import load

pytestmark = [pytest.mark.integration]

QD32 = """\
format_version: 1
name: knobs-qd32
workload:
  kind: disk
  file_size: 32MiB
  runtime: 1
  jobs:
    - {name: qd32, rw: randread, bs: 4KiB, iodepth: 32, ioengine: libaio}
backends: [native, docker]
repeat: 2
warmup: 0
timeout: 120
docker:
  storage: [overlay, volume]
"""

# dd writes a file relative to its working directory (the storage under test) and reports
# its rate on stderr: the regex parser reads it.
DD = """\
format_version: 1
name: knobs-dd
workload:
  kind: command
  command: [dd, if=/dev/zero, of=isobench-dd.dat, bs=1M, count=16, oflag=direct]
  parser: regex
  pattern: '(?P<bytes>[0-9]+) bytes .* copied, (?P<secs>[0-9.e-]+) s'
  metrics:
    - {name: dd.seconds, unit: s, direction: lower, group: secs}
    - {name: dd.bytes, unit: B, direction: higher, group: bytes}
backends: [native, docker]
repeat: 2
warmup: 0
timeout: 120
docker:
  storage: [overlay, volume]
"""

# fio prints JSON; selectors pick two figures out of it.
FIO_JSON = """\
format_version: 1
name: knobs-json
workload:
  kind: command
  command: [fio, --name=j, --rw=write, --bs=64k, --size=8MiB, --filename=j.dat,
            --output-format=json]
  parser: json
  metrics:
    - {name: fio.write_bw, unit: B/s, direction: higher, select: "jobs[0].write.bw_bytes"}
    - {name: fio.write_p99, unit: s, direction: lower, scale: 1.0e-9,
       select: 'jobs[0].write.clat_ns.percentile["99.000000"]'}
backends: [native, docker]
repeat: 2
warmup: 0
timeout: 120
"""


def _run(tmp_path: Path, text: str, *backends: str, status: int = 0) -> pd.DataFrame:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    argv = ["run", str(path), "--out", str(tmp_path / "results"), "--plain"]
    for name in backends:
        argv += ["--backend", name]
    assert main(argv) == status
    (run_dir,) = (tmp_path / "results").iterdir()
    frame = load([run_dir])
    if status == 0:  # every row measured: a reason otherwise
        assert set(frame["status"]) == {"ok"}, frame[frame["status"] != "ok"]["reason"].tolist()
    return frame


@pytest.fixture
def client(docker_client: docker.DockerClient, docker_image: str) -> docker.DockerClient:
    return docker_client  # with the isobench image present


def _ours(client: docker.DockerClient) -> list[str]:
    mine = f"{OWNER_LABEL}={ownership.current().token}"
    flt = {"label": [f"{LABEL}=1", mine]}
    containers = [c.name or "" for c in client.containers.list(all=True, filters=flt)]
    return containers + [v.name or "" for v in client.volumes.list(filters=flt)]


def _facts(tmp_path: Path) -> list[tuple[str, dict[str, str]]]:
    (run_dir,) = (tmp_path / "results").iterdir()
    lines = (run_dir / "facts.jsonl").read_text().splitlines()
    return [(entry["variant"], entry["facts"]) for entry in map(json.loads, lines)]


@pytest.mark.docker
def test_randread_qd32_libaio_on_native_and_docker_volume_and_overlay(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    frame = _run(tmp_path, QD32, "native", "docker")
    iops = frame[frame["metric"] == "disk.qd32.read_iops"]
    assert set(iops["variant"]) == {
        "host",
        "runtime=runc,network=none,seccomp=default,storage=overlay",
        "runtime=runc,network=none,seccomp=default,storage=volume",
    }
    assert (iops["value"] > 100).all()  # a real device answers thousands per second
    p50 = frame[frame["metric"] == "disk.qd32.read_lat_p50"]["value"]
    p99 = frame[frame["metric"] == "disk.qd32.read_lat_p99"]["value"]
    assert (p50.to_numpy() <= p99.to_numpy()).all()
    assert set(frame["unit"][frame["metric"] == "disk.qd32.read_bw"]) == {"B/s"}
    assert _ours(client) == []


@pytest.mark.docker
def test_regex_command_runs_in_the_storage_under_test(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    frame = _run(tmp_path, DD, "native", "docker")
    seconds = frame[frame["metric"] == "dd.seconds"]
    assert len(seconds) == 6  # native + overlay + volume, 2 each
    assert ((seconds["value"] > 0) & (seconds["value"] < 60)).all()
    assert set(frame[frame["metric"] == "dd.bytes"]["value"]) == {16 * 1024 * 1024}
    # the command's working directory was each variant's storage under test, and every one
    # of them is on the same host filesystem
    workdirs = {variant.rsplit("=", 1)[-1]: facts["workdir"] for variant, facts in _facts(tmp_path)}
    assert workdirs["volume"] == "/mnt/isobench"
    assert workdirs["overlay"] == "/var/tmp/isobench"
    assert "/native-" in workdirs["host"]
    devices = {facts["disk_host_fs_dev"] for _, facts in _facts(tmp_path)}
    assert len(devices) == 1
    assert _ours(client) == []


@pytest.mark.docker
def test_json_command_on_native_and_docker(client: docker.DockerClient, tmp_path: Path) -> None:
    frame = _run(tmp_path, FIO_JSON, "native", "docker")
    bw = frame[frame["metric"] == "fio.write_bw"]
    assert set(bw["backend"]) == {"native", "docker"}
    assert (bw["value"] > 0).all()
    p99 = frame[frame["metric"] == "fio.write_p99"]["value"]
    assert ((p99 > 0) & (p99 < 10)).all()  # scaled from ns to s
    assert _ours(client) == []


REQUIRES_MISSING = """\
format_version: 1
name: knobs-requires
workload: {kind: command, command: [/usr/games/cowsay, moo]}
requires: [cowsay]
backends: [native, docker]
repeat: 3
warmup: 1
"""


def test_requires_missing_from_the_guest_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "requires.yaml"
    path.write_text(REQUIRES_MISSING)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:12: requires[0]: package 'cowsay' is not in the guest environment" in err
    assert f"add it with: isobench env build {path}" in err
    status = main(["run", str(path), "--out", str(tmp_path / "out"), "--backend", "docker"])
    err = capsys.readouterr().err
    if "backend docker unavailable" in err:
        pytest.skip("docker unavailable: the run has no guest backend to refuse")
    assert status == 1
    assert "requires[0]: package 'cowsay'" in err
    assert "isobench env build" in err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_tool_missing_on_the_host_is_a_skipped_native_row(tmp_path: Path) -> None:
    # exit status 1: an item produced no successful sample (said, not hidden)
    text = REQUIRES_MISSING.replace("[native, docker]", "[native]")
    frame = _run(tmp_path, text, "native", status=1)
    assert set(frame["status"]) == {"skipped"}
    assert len(frame) == 4  # every planned repetition once, not a failure per attempt
    reason = frame["reason"].iloc[0]
    assert "package cowsay (requires) is not installed on the host" in reason
    assert "apt-get install cowsay" in reason
