"""The podman backend on real Podman, rootful and rootless: kernel inside, no leftovers."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.backends.base import Repetition
from bench.backends.docker.support import RUN_LABEL
from bench.backends.podman import PodmanBackend
from bench.backends.podman.service import _SOCKET, SOCKET_PREFIX, _alive, rootless_account
from bench.envbuild.image import image_tag
from bench.values import BackendError, BackendUnavailable, Variant
from tests.engines import skip_or_fail
from tests.integration import helpers
from tests.integration.helpers import available, interrupt_with_sigint
from tests.integration.test_network_density import (
    SMALL_NET,
    check_density,
    check_network,
    interrupt_density_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.podman]

MODES = [
    Variant.of(mode="rootful", storage="overlay", network="none"),
    Variant.of(mode="rootless", storage="overlay", network="none"),
]


@pytest.fixture
def backend() -> Iterator[PodmanBackend]:
    yield from available(PodmanBackend())


scenario = functools.partial(helpers.scenario, timeout=120, name="pm")


def leftovers() -> list[str]:
    """Services, conmons and rootless-user processes alive now (none may outlive teardown).

    A service counts when this process or a dead harness started it. Other engineers' or
    CI jobs' live harnesses may run Podman at the same time: while one does, conmons and the
    rootless user's processes cannot be attributed and are not counted.
    """
    mine = f"{SOCKET_PREFIX}{os.getpid()}_"
    rootless = rootless_account()
    services, others, helpers = [], False, []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "uids"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        found = _SOCKET.search(cmdline) if proc.info["name"] == "podman" else None
        if found:
            if mine in cmdline or not _alive(found.group(1), found.group(2)):
                services.append(f"{proc.info['pid']} {cmdline[:80]}")
            else:
                others = True
        elif (proc.info["name"] == "conmon" and "isobench" in cmdline) or (
            rootless is not None and proc.info["uids"].real == rootless.pw_uid
        ):
            helpers.append(f"{proc.info['pid']} {cmdline[:80]}")
    return services if others else services + helpers


@pytest.mark.parametrize("variant", MODES, ids=lambda v: v.params["mode"])
def test_startup_syscall_memory_on_the_hosts_kernel_and_nothing_left(
    backend: PodmanBackend, variant: Variant, tmp_path: Path
) -> None:
    if variant.params["mode"] == "rootless" and rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    facts = {}
    for workload in (
        {"kind": "startup"},
        {"kind": "syscall", "null_calls": 100_000, "mixed_calls": 8_000},
        {"kind": "memory", "alloc": "8MiB", "idle": 0.3},
    ):
        sc = scenario(workload)
        assert variant in backend.variants(sc)
        backend.prepare(sc, variant)
        outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
        assert outcome.facts["kernel"] == os.uname().release  # uname -r inside: the host's
        assert outcome.facts["storage_driver"] == "overlay"
        values = {m.metric: m.value for m in outcome.measurements}
        assert all(v > 0 for v in values.values()), values
        facts[workload["kind"]] = outcome.facts
    assert facts["syscall"]["seccomp_mode"] == "2"
    rootless = variant.params["mode"] == "rootless"
    assert facts["memory"]["user"] == ("isobench-rootless" if rootless else "root")
    assert "conmon" in facts["memory"]["memory_accounting"]
    assert leftovers()  # the service (and its exec container) run until teardown...
    backend.teardown()
    assert leftovers() == []  # ...and nothing survives it: no service, conmon, pause process


@pytest.fixture(params=MODES, ids=lambda v: v.params["mode"])
def cli_variant(request: pytest.FixtureRequest) -> Variant:
    """The ``path=cli`` start-up variant of each mode (rootless: only with its user)."""
    if request.param.params["mode"] == "rootless" and rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    return Variant.of(**request.param.params, path="cli")


def test_startup_cli_path_is_podman_run_on_the_services_store(
    backend: PodmanBackend, cli_variant: Variant, tmp_path: Path
) -> None:
    sc = scenario({"kind": "startup"})
    assert cli_variant in backend.variants(sc)
    backend.prepare(sc, cli_variant)
    outcome = backend.run(Repetition(sc, cli_variant, 0, False, sc.timeout, tmp_path))
    values = {m.metric: m.value for m in outcome.measurements}
    assert set(values) == {"startup.cli_run", "startup.ready", "startup.total"}
    assert values["startup.cli_run"] == values["startup.total"]
    assert 0 < values["startup.ready"] < values["startup.total"]
    assert outcome.facts["kernel"] == os.uname().release
    rootless = cli_variant.params["mode"] == "rootless"
    assert outcome.facts["user"] == ("isobench-rootless" if rootless else "root")
    # `podman run --rm` removed its container: none of this run is left in the service's store
    client = backend._service(cli_variant).client
    mine = {"label": f"{RUN_LABEL}={backend._ownership.run}"}
    assert client.containers.list(all=True, filters=mine) == []
    backend.teardown()
    assert leftovers() == []


def test_startup_cli_failure_names_podman_run_and_leaves_nothing(
    backend: PodmanBackend, cli_variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = scenario({"kind": "startup"})
    backend.prepare(sc, cli_variant)
    taken = backend._ownership.name("taken")  # an owned container holds the CLI's name
    backend._service(cli_variant).client.api.create_container(
        image_tag(), name=taken, labels=backend._ownership.labels("x")
    )
    monkeypatch.setattr(backend._ownership, "name", lambda what: taken)
    with pytest.raises(BackendError, match=r"podman run exited with status \d+: .*name"):
        backend.run(Repetition(sc, cli_variant, 0, False, sc.timeout, tmp_path))
    backend.teardown()
    assert leftovers() == []


def test_ctrl_c_during_podman_run_leaves_nothing(backend: PodmanBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "startup"})
    variant = Variant.of(**MODES[0].params, path="cli")
    backend.prepare(sc, variant)

    def starts() -> None:
        for repetition in range(1000):
            backend.run(Repetition(sc, variant, repetition, False, sc.timeout, tmp_path))

    interrupt_with_sigint(starts, after=1.0, cleanup=backend.teardown)
    assert leftovers() == []


def test_keyboard_interrupt_leaves_nothing(backend: PodmanBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "command", "command": ["sleep", "60"]})
    variant = MODES[0]
    backend.prepare(sc, variant)
    interrupt_with_sigint(
        lambda: backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path)),
        after=1.5,
        cleanup=backend.teardown,
    )
    assert leftovers() == []


def test_rootless_limits_on_cgroup_v1_are_a_skip_with_the_reason(backend: PodmanBackend) -> None:
    if rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    sc = scenario({"kind": "startup"}, limits={"memory": "64MiB"})
    variant = MODES[1]
    service = backend._service(variant)
    if service.client.info().get("CgroupVersion") != "1":
        pytest.skip("cgroup v2 host: rootless limits may work here")
    with pytest.raises(Exception, match="cgroup v1"):
        backend.prepare(sc, variant)


# -- network and density ----------------------------------------------------------------------


def test_network_variants_skip_a_host_client_without_network(backend: PodmanBackend) -> None:
    sc = scenario(
        {"kind": "network", "client": ["host", "inside"]},
        podman={"modes": ["rootful"], "network": ["bridge", "none"]},
    )
    base = "mode=rootful,storage=overlay"
    assert [v.label for v in backend.variants(sc)] == [
        f"{base},network=bridge,client=host",
        f"{base},network=bridge,client=inside",
        f"{base},network=none,client=inside",
    ]
    assert any("network=none has no interface" in note for note in backend.notes())


@pytest.mark.parametrize(
    ("mode", "network", "where"),
    [
        ("rootful", "bridge", "host"),
        ("rootful", "host", "host"),
        ("rootful", "none", "inside"),
        ("rootless", "bridge", "host"),
    ],
)
def test_network_paths_and_nothing_left(
    backend: PodmanBackend, tmp_path: Path, mode: str, network: str, where: str
) -> None:
    if mode == "rootless" and rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    sc = scenario({"kind": "network", "client": [where], **SMALL_NET})
    variant = Variant.of(mode=mode, storage="overlay", network=network, client=where)
    tun_closed = not Path("/dev/net/tun").stat().st_mode & 0o006  # root only
    if mode == "rootless" and network == "bridge" and tun_closed:
        # slirp4netns cannot open the tun device: a skipped row with the reason, no half start
        with pytest.raises(BackendUnavailable, match="/dev/net/tun"):
            backend.prepare(sc, variant)
        backend.teardown()
        assert leftovers() == []
        return
    backend.prepare(sc, variant)
    outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    check_network(outcome)
    assert outcome.facts["net_path"].startswith("host " if where == "host" else "container ")
    if network == "bridge":  # the process serving the published port, or that none does
        assert outcome.facts["net_proxy"]
    backend.teardown()
    assert leftovers() == []


@pytest.mark.parametrize(("mode", "start"), [("rootful", "concurrent"), ("rootless", "sequential")])
def test_density_counts_conmon_and_removes_every_container(
    backend: PodmanBackend, tmp_path: Path, mode: str, start: str
) -> None:
    if mode == "rootless" and rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    sc = scenario({"kind": "density", "instances": [3], "start": [start], "settle": 0.2})
    variant = Variant.of(mode=mode, storage="overlay", network="none", instances="3", start=start)
    assert variant in backend.variants(sc)
    backend.prepare(sc, variant)
    outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    check_density(outcome, 3)
    assert int(outcome.facts["processes"]) >= 6  # 3 probes + 3 conmons
    # Each container costs its conmon too (~0.6 MiB): more than a native idle probe (~150 KiB).
    assert outcome.measurements[-2].metric == "density.pss_per_instance"
    assert outcome.measurements[-2].value > 400 * 1024
    client = backend._service(variant).client
    mine = {"label": f"{RUN_LABEL}={backend._ownership.run}"}  # the rootful store is shared
    assert client.containers.list(all=True, filters=mine) == []
    backend.teardown()
    assert leftovers() == []


def test_ctrl_c_during_density_leaves_nothing(backend: PodmanBackend, tmp_path: Path) -> None:
    options = {"podman": {"modes": ["rootful"], "network": ["none"]}}
    assert interrupt_density_run(tmp_path, "podman", 4, options) == []
    assert leftovers() == []
