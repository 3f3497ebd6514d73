"""The podman backend: the same image and workloads as Docker, on Podman, rootful and rootless.

Podman is driven through its Docker-compatible API (``podman system service``) with docker-py,
not the ``podman`` Python package: that way every measuring function
of the Docker backend (fresh-container start-up phases, the long-lived exec container for
syscall/disk/command, ownership labels and orphan removal) runs unchanged against both engines,
so a difference between them is the engine's, not the harness's. The price: the API service is
a process the CLI path does not have; it is started outside every timed region.

Variants: ``mode=rootful,storage=overlay`` and ``mode=rootless,storage=<driver>`` (overlay,
fuse-overlayfs, vfs: the storage driver decides what a container start copies) x network
(x client for ``network``, x instances x start for ``density``, as for Docker). Start-up is
measured twice, as for Docker: through the API service and, with ``path=cli``, as the ``podman
run --rm`` a user types (the service's store, options and user; the service plays no part).
``network`` and ``density`` reuse the Docker backend's code too
(:mod:`bench.backends.docker.netdensity`): the server container's port is published on
127.0.0.1 through Podman's own network (rootful: its bridge; rootless: its rootless network and
port forwarder), which the fact ``net_proxy`` names; density's instances are counted with their
conmon, as ``memory.environment`` is.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import docker.errors

from bench import ownership
from bench.backends.base import Repetition
from bench.backends.docker import measure as docker_measure
from bench.backends.docker.engine import cli_version
from bench.backends.docker.netdensity import DockerNetwork, server_settings, sweep_variants
from bench.backends.docker.support import (
    OVERLAY_DIR,
    ContainerExecutor,
    Ownership,
    host_config_kwargs,
    leftovers,
    remove_run,
    seccomp_mode,
)
from bench.backends.podman import measure
from bench.backends.podman.service import (
    ROOTLESS_USER,
    Mode,
    Service,
    kill_leftover_helpers,
    rootless_account,
    stop_orphan_services,
    subid_range,
)
from bench.envbuild.image import image_tag
from bench.envbuild.rootfs import rootfs_path
from bench.paths import cache_dir
from bench.scenario.model import (
    CommandWorkload,
    DensityWorkload,
    DiskWorkload,
    MemoryWorkload,
    NetworkWorkload,
    Scenario,
    SyscallWorkload,
)
from bench.values import Availability, BackendError, BackendUnavailable, Outcome, Variant
from bench.workloads import GUEST_PROBE, build_probe, run_command, run_disk, run_syscall
from bench.workloads.density import run_variant
from bench.workloads.network import host_cpu_pair

INSTALL_HINT: Final = "sudo scripts/provision podman (podman, uidmap, rootless user)"
BUILD_HINT: Final = "isobench env build"


def _ulimits(limits: dict[str, int]) -> list[Any]:
    from docker.types import Ulimit  # noqa: PLC0415 - docker-py is imported by the service

    # Podman's defaults (1048576 open files) exceed what many hosts allow the service, and
    # crun then refuses to start the container: ask for the service's own hard limits.
    return [Ulimit(name=n, soft=v, hard=v) for n, v in sorted(limits.items())]


class PodmanBackend:
    """Containers on Podman (rootful and rootless), via its Docker-compatible API."""

    name = "podman"
    interleave = True

    def __init__(self) -> None:
        self._services: dict[str, Service] = {}
        self._ownership = Ownership()
        self._executors: dict[tuple[str, str], ContainerExecutor] = {}
        self._networks: dict[tuple[str, str], DockerNetwork] = {}
        self._notes: list[str] = []

    # -- protocol -------------------------------------------------------------------------------

    def availability(self) -> Availability:
        """podman installed, the shared rootfs built (the image is imported from it)."""
        if shutil.which("podman") is None:
            return Availability(False, "podman is not installed", INSTALL_HINT)
        try:
            tag = image_tag()
        except (OSError, RuntimeError) as exc:
            return Availability(False, f"cannot compute the image tag: {exc}", BUILD_HINT)
        if not (rootfs_path(tag.partition(":")[2]) / GUEST_PROBE.lstrip("/")).exists():
            return Availability(False, "the shared rootfs is not built", BUILD_HINT)
        stopped = stop_orphan_services()
        if stopped:
            self._notes.append(f"stopped services of an interrupted run: {', '.join(stopped)}")
        return Availability(True)

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """rootful (overlay) and rootless per storage driver, x network (x path for startup)."""
        options = scenario.podman
        out: list[Variant] = []
        for mode in options.modes:
            drivers = options.rootless_storage if mode == "rootless" else ("overlay",)
            for storage in drivers:
                for network in options.network:
                    base: dict[str, str] = {"mode": mode, "storage": storage, "network": network}
                    if isinstance(scenario.workload, NetworkWorkload | DensityWorkload):
                        out += sweep_variants(scenario, base, self._notes)
                    elif scenario.workload.kind == "startup":  # API service, `podman run`
                        out += [Variant.of(**base), Variant.of(**base, path="cli")]
                    else:
                        out.append(Variant.of(**base))
        return out

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Start the variant's API service, import the image, start the exec container."""
        service = self._service(variant)
        if (
            service.mode.rootless
            and service.client.info().get("CgroupVersion") == "1"
            and (scenario.limits.cpus is not None or scenario.limits.memory is not None)
        ):
            msg = "rootless Podman cannot apply resource limits on cgroup v1 (no cgroups)"
            raise BackendUnavailable(msg)
        if scenario.workload.kind not in {"syscall", "disk", "command", "network"}:
            return
        key = (scenario.hash, variant.label)
        if key not in self._executors:
            executor = ContainerExecutor(
                service.client,
                image_tag(),
                self._ownership.labels(variant.label),
                self._ownership.name("exec"),
                self._host_config(service, variant, scenario),
            )
            if isinstance(scenario.workload, NetworkWorkload):  # the server is the main process
                network = variant.params.get("network", "none")
                cpus = host_cpu_pair()  # client on the first CPU, server on the second
                executor.command, executor.ports, extra = server_settings(network, cpus)
                executor.host_config.update(extra)
                host_probe = str(build_probe(cache_dir()))  # the host client, same source
                self._networks[key] = DockerNetwork(executor, network, host_probe, cpus)
            else:
                executor.setup.append(["mkdir", "-p", OVERLAY_DIR])
            if isinstance(scenario.workload, CommandWorkload):
                executor.workdir = OVERLAY_DIR  # the command runs in the storage under test
            self._executors[key] = executor
        try:
            self._executors[key].ensure()
        except docker.errors.APIError as exc:
            if not isinstance(scenario.workload, NetworkWorkload):
                raise
            # e.g. rootless bridge: slirp4netns needs /dev/net/tun, root-only on some hosts.
            del self._executors[key]
            detail = str(exc.explanation or exc).strip()[-300:]
            msg = f"Podman ({variant.label}) cannot start the server container here: {detail}"
            raise BackendUnavailable(msg) from exc

    def run(self, repetition: Repetition) -> Outcome:
        """One repetition, with the Docker backend's measuring code on Podman's API."""
        scenario, variant = repetition.scenario, repetition.variant
        workload = scenario.workload
        service = self._service(variant)
        facts = {
            "image": image_tag(),
            "storage_driver": service.driver,
            "user": ROOTLESS_USER if service.mode.rootless else "root",
        }
        if isinstance(workload, DensityWorkload):
            instances = measure.PodmanInstances(
                service.client,
                image_tag(),
                self._ownership,
                variant.label,
                self._host_config(service, variant, scenario),
                service_pid=service.proc.pid,
            )
            outcome = run_variant(instances, workload, variant.params, repetition.timeout)
            return Outcome(outcome.measurements, {**facts, **outcome.facts})
        if workload.kind in {"startup", "memory"}:
            spec = docker_measure.Spec(
                image_tag(),
                self._ownership.labels(variant.label),
                self._ownership.name(workload.kind),
                self._host_config(service, variant, scenario),
            )
            if isinstance(workload, MemoryWorkload):
                outcome = measure.memory_idle(
                    service.client,
                    spec,
                    int(workload.alloc),
                    workload.idle,
                    repetition.timeout,
                    service_pid=service.proc.pid,
                )
            elif variant.params.get("path") == "cli":
                outcome = docker_measure.startup_cli(
                    service.client, service.cli, spec, repetition.timeout
                )
            else:
                outcome = docker_measure.startup_api(service.client, spec, repetition.timeout)
            return Outcome(outcome.measurements, {**facts, **outcome.facts})
        key = (scenario.hash, variant.label)
        if key not in self._executors:
            self.prepare(scenario, variant)
        executor = self._executors[key]
        executor.ensure()
        facts["seccomp_mode"] = seccomp_mode(executor.pid())
        if isinstance(workload, SyscallWorkload):
            outcome = run_syscall(executor, GUEST_PROBE, workload, repetition.timeout)
            facts.update(docker_measure.kernel_facts(outcome.facts))
        elif isinstance(workload, DiskWorkload):
            outcome = run_disk(executor, workload, OVERLAY_DIR, repetition.timeout)
            facts["storage"] = f"container root filesystem ({OVERLAY_DIR})"
        elif isinstance(workload, CommandWorkload):
            outcome = run_command(executor, workload, repetition.timeout)
            facts["storage"] = f"container root filesystem ({OVERLAY_DIR})"
        elif isinstance(workload, NetworkWorkload):
            where = variant.params.get("client", "host")
            outcome = self._networks[key].run(workload, where, repetition.timeout)
        else:  # pragma: no cover - the scenario model admits no other kind
            msg = f"unsupported workload kind {workload.kind!r}"
            raise BackendError(msg)
        return Outcome(outcome.measurements, {**outcome.facts, **facts})

    def teardown(self) -> None:
        """Remove every container of this instance, then stop the API services."""
        for executor in self._executors.values():
            executor.discard()
        self._executors.clear()
        self._networks.clear()
        rootless = False
        for service in self._services.values():
            rootless = rootless or service.mode.rootless
            try:
                remove_run(service.client, self._ownership.run)
            finally:
                service.stop()
        self._services.clear()
        account = rootless_account() if rootless else None
        kill_leftover_helpers(self._ownership.name_prefix, account.pw_uid if account else None)

    def notes(self) -> list[str]:
        """Removed orphans and stopped services of interrupted runs."""
        return list(self._notes)

    def environment(self) -> dict[str, Any]:
        """Podman version, rootless user and its ID mapping, runtime, per-service info."""
        env: dict[str, Any] = {"podman_version": cli_version(["podman", "--version"])}
        account = rootless_account()
        if account is not None:
            env["rootless_user"] = account.pw_name
            env["rootless_uid"] = account.pw_uid
            env["subuid"] = subid_range(account.pw_name, Path("/etc/subuid"))
            env["subgid"] = subid_range(account.pw_name, Path("/etc/subgid"))
        for key, service in self._services.items():
            try:
                info = service.client.info()
            except Exception as exc:  # environment capture must never break a run
                env[key] = {"error": str(exc)}
                continue
            env[key] = {
                "storage_driver": info.get("Driver"),
                "driver_status": dict(info.get("DriverStatus") or []),
                "cgroup_version": info.get("CgroupVersion"),
                "default_runtime": info.get("DefaultRuntime"),
                "security_options": info.get("SecurityOptions"),
            }
        return env

    # -- helpers --------------------------------------------------------------------------------

    def _service(self, variant: Variant) -> Service:
        mode = Mode(variant.params.get("mode") == "rootless", variant.params["storage"])
        if mode.key not in self._services:
            service = Service(mode)
            self._services[mode.key] = service
            self._notes += ownership.sweep(leftovers(service.client)).notes()
            try:
                tag = image_tag()
                service.ensure_image(rootfs_path(tag.partition(":")[2]), tag)
            except Exception as exc:
                msg = f"cannot import the image into Podman ({mode.key}): {exc}"
                raise BackendUnavailable(msg) from exc
        return self._services[mode.key]

    def _host_config(
        self, service: Service, variant: Variant, scenario: Scenario
    ) -> dict[str, Any]:
        params = {"network": variant.params.get("network", "none")}
        config = host_config_kwargs(params, scenario.limits)
        config["ulimits"] = _ulimits(service.limits())
        return config


__all__ = ["PodmanBackend"]
