"""The docker backend: every workload in containers on a real dockerd, via the docker SDK.

* startup and memory run in a fresh container per repetition (their subject *is* the
  container's life cycle), see :mod:`bench.backends.docker.measure`;
* syscall, disk and command run through the shared :mod:`bench.workloads` code inside one
  long-lived container per (scenario, variant), created by :meth:`DockerBackend.prepare`, via
  the exec API (:class:`~bench.backends.docker.support.ContainerExecutor`), so the measured
  code is identical to native's and no container start-up leaks into those numbers.

Variants: runtime x network x seccomp, x storage (overlay|volume) for disk and for a command
that lists ``docker.storage`` (a command runs with the storage under test as its working
directory; overlay when not varied), x path (api|cli) for startup. Runtimes dockerd does
not know (e.g. runsc where gVisor is not installed) are skipped and noted in
:meth:`DockerBackend.environment`.

The package: this module is the backend's life cycle; :mod:`~bench.backends.docker.variants`
computes the variants, :mod:`~bench.backends.docker.execution` runs the exec-based workloads,
:mod:`~bench.backends.docker.measure` the fresh-container ones (start-up phases, memory),
:mod:`~bench.backends.docker.netdensity` network and density, :mod:`~bench.backends.docker.engine`
describes the engine, :mod:`~bench.backends.docker.support` holds labels, leftovers and the
exec container.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

from bench import ownership
from bench.backends.base import Repetition
from bench.paths import cache_dir
from bench.scenario.model import (
    CommandWorkload,
    DensityWorkload,
    DiskWorkload,
    MemoryWorkload,
    NetworkWorkload,
    Scenario,
)
from bench.values import Availability, BackendError, BackendUnavailable, Outcome, Variant
from bench.workloads import build_probe
from bench.workloads.density import MAX_THREADS, run_density
from bench.workloads.fio import check_engines
from bench.workloads.network import host_cpu_pair

# The SDK is a declared dependency, but a broken install must make the backend report itself
# unavailable with the reason, not crash the registry.
try:
    import docker

    from bench.backends.docker import measure
    from bench.backends.docker.engine import docker_cli, engine_facts
    from bench.backends.docker.execution import run_in_container, storage_directory
    from bench.backends.docker.netdensity import DockerInstances, DockerNetwork, server_settings
    from bench.backends.docker.support import (
        OVERLAY_DIR,
        ContainerExecutor,
        Ownership,
        host_config_kwargs,
        leftovers,
        remove_run,
        seccomp_profile,
    )
    from bench.backends.docker.variants import docker_variants, runtime_args_params
    from bench.envbuild.image import DockerUnreachableError, connect, image_exists, image_tag

    SDK_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - exercised only on a broken install
    SDK_ERROR = _exc

PING_TIMEOUT: Final = 5
#: Read timeout of API calls. Long on purpose: exec and wait block while a workload runs;
#: the backend enforces the scenario timeout itself (and the runner's watchdog backs it up).
API_TIMEOUT: Final = 3600
ENABLE_HINT: Final = "sudo bash scripts/provision-docker.sh (installs and starts dockerd)"
BUILD_HINT: Final = "isobench env build"


class DockerBackend:
    """Containers on the local dockerd (docker SDK for Python)."""

    name = "docker"
    interleave = True

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None
        self._ownership: Ownership | None = None
        self._executors: dict[tuple[str, str], ContainerExecutor] = {}
        self._networks: dict[tuple[str, str], DockerNetwork] = {}
        self._cleaned = False
        self._tag: str | None = None
        self._runtime_checked: dict[str, str] = {}  # runtime -> "" (works) or why not
        #: Things a user should know about this run (skipped runtimes, removed orphans).
        self._notes: list[str] = []

    # -- connection -----------------------------------------------------------------------------

    def _connect(self) -> docker.DockerClient:
        if self._client is None:
            connect(PING_TIMEOUT).close()  # fails fast, with a specific reason
            # Enough pooled connections for density's concurrent launches.
            self._client = docker.from_env(timeout=API_TIMEOUT, max_pool_size=MAX_THREADS + 4)
        return self._client

    def _owner(self) -> Ownership:
        if self._ownership is None:
            self._ownership = Ownership()
        return self._ownership

    def _image(self) -> str:
        if self._tag is None:
            self._tag = image_tag()
        return self._tag

    def _cleanup_orphans(self, client: docker.DockerClient) -> None:
        """Remove what dead harness processes of this host left (once, at the run's start)."""
        if self._cleaned:
            return
        self._cleaned = True
        self._notes += ownership.sweep(leftovers(client)).notes()

    def _check_runtime(self, client: docker.DockerClient, runtime: str) -> None:
        """Start one throw-away container with ``runtime`` (once): registered is not working."""
        if runtime not in self._runtime_checked:
            problem = ""
            if runtime not in self.runtimes():
                problem = f"runtime {runtime!r} is not registered with dockerd"
            else:
                owner = self._owner()
                spec = measure.Spec(
                    self._image(),
                    owner.labels(f"runtime={runtime}"),
                    owner.name("runtime-check"),
                    {"network_mode": "none", "runtime": runtime},
                )
                try:
                    measure.startup_api(client, spec, 60.0)
                except (docker.errors.APIError, BackendError) as exc:
                    detail = getattr(exc, "explanation", None) or str(exc)
                    problem = f"runtime {runtime!r} cannot start containers here: {detail}"
            self._runtime_checked[runtime] = problem
            if problem:
                self._notes.append(problem)
        if self._runtime_checked[runtime]:
            raise BackendUnavailable(self._runtime_checked[runtime])

    # -- protocol -------------------------------------------------------------------------------

    def availability(self) -> Availability:
        """SDK importable, dockerd answering, permission, image present. Deletes nothing."""
        if SDK_ERROR is not None:
            reason = f"docker SDK for Python not importable: {SDK_ERROR}"
            return Availability(False, reason, "pip install docker")
        try:
            client = self._connect()
        except DockerUnreachableError as exc:
            return Availability(False, str(exc), ENABLE_HINT)
        try:
            tag = self._image()
        except (OSError, RuntimeError) as exc:
            return Availability(False, f"cannot compute the image tag: {exc}", BUILD_HINT)
        if not image_exists(client, tag):
            return Availability(False, f"isobench image missing ({tag})", BUILD_HINT)
        return Availability(True)

    def runtimes(self) -> list[str]:
        """Runtimes dockerd reports."""
        return sorted(self._connect().info().get("Runtimes", {}))

    def runtime_params(self, runtime: str) -> dict[str, str]:
        """Variant parameters fixed by a runtime's registration (gVisor: platform, network)."""
        spec = (self._connect().info().get("Runtimes") or {}).get(runtime) or {}
        return runtime_args_params(spec.get("runtimeArgs") or ())

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """runtime x network x seccomp (x storage for disk, x path for startup)."""
        return docker_variants(scenario, self.runtimes(), self.runtime_params, self._notes)

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Remove dead runs' leftovers, check image and runtime; start the exec container."""
        try:
            client = self._connect()
        except DockerUnreachableError as exc:
            raise BackendUnavailable(str(exc)) from exc
        self._cleanup_orphans(client)
        tag = self._image()
        if not image_exists(client, tag):
            msg = f"isobench image missing ({tag}); run: isobench env build"
            raise BackendUnavailable(msg)
        self._check_runtime(client, variant.params.get("runtime", "runc"))
        if scenario.workload.kind not in {"syscall", "disk", "command", "network"}:
            return
        key = (scenario.hash, variant.label)
        if key in self._executors:
            return
        owner = self._owner()
        volume = None
        if variant.params.get("storage") == "volume":
            volume = owner.name("scratch")
            client.volumes.create(name=volume, labels=owner.labels(variant.label))
        executor = ContainerExecutor(
            client,
            tag,
            owner.labels(variant.label),
            owner.name("exec"),
            host_config_kwargs(variant.params, scenario.limits, volume),
        )
        storage = variant.params.get("storage", "overlay")
        if storage == "overlay":
            executor.setup.append(["mkdir", "-p", OVERLAY_DIR])
        if isinstance(scenario.workload, NetworkWorkload):  # the server is the main process
            network = variant.params.get("network", "none")
            cpus = host_cpu_pair()  # client on the first CPU, server on the second
            executor.command, executor.ports, extra = server_settings(network, cpus)
            executor.host_config.update(extra)
            probe = str(build_probe(cache_dir()))  # the host client: same source as the guest's
            self._networks[key] = DockerNetwork(executor, network, probe, cpus)
        directory = storage_directory(storage)
        if isinstance(scenario.workload, CommandWorkload):
            executor.workdir = directory  # the command runs in the storage under test
        self._executors[key] = executor
        executor.ensure()
        if isinstance(scenario.workload, DiskWorkload) and scenario.workload.jobs:
            try:
                check_engines(executor, scenario.workload, directory, scenario.timeout)
            except BackendUnavailable:
                executor.discard()
                del self._executors[key]
                raise

    def run(self, repetition: Repetition) -> Outcome:
        """Run one repetition of the scenario's workload in the variant's container(s)."""
        scenario, variant = repetition.scenario, repetition.variant
        workload = scenario.workload
        facts = {
            "image": self._image(),
            "runtime": variant.params.get("runtime", "runc"),
            "seccomp_profile": seccomp_profile(variant.params),
        }
        if isinstance(workload, DensityWorkload):
            outcome = self._density(repetition, workload)
            return Outcome(outcome.measurements, {**facts, **outcome.facts})
        if workload.kind in {"startup", "memory"}:
            outcome = self._fresh_container(repetition)
            return Outcome(outcome.measurements, {**facts, **outcome.facts})
        key = (scenario.hash, variant.label)
        if key not in self._executors:
            self.prepare(scenario, variant)
        outcome, container = run_in_container(
            self._executors[key], self._networks.get(key), workload, variant, repetition.timeout
        )
        return Outcome(outcome.measurements, {**outcome.facts, **facts, **container})

    def _density(self, repetition: Repetition, workload: DensityWorkload) -> Outcome:
        """N containers of idle probes (:mod:`bench.workloads.density`)."""
        params = repetition.variant.params
        config = host_config_kwargs(params, repetition.scenario.limits)
        instances = DockerInstances(
            self._connect(), self._image(), self._owner(), repetition.variant.label, config
        )
        return run_density(
            instances,
            int(params["instances"]),
            params["start"],
            workload.settle,
            repetition.timeout,
        )

    def _fresh_container(self, repetition: Repetition) -> Outcome:
        """startup or memory: a fresh container per repetition (:mod:`.measure`)."""
        workload, variant = repetition.scenario.workload, repetition.variant
        client, owner = self._connect(), self._owner()
        spec = measure.Spec(
            self._image(),
            owner.labels(variant.label),
            owner.name(workload.kind),
            host_config_kwargs(variant.params, repetition.scenario.limits),
        )
        if isinstance(workload, MemoryWorkload):
            alloc = int(workload.alloc)
            return measure.memory_idle(client, spec, alloc, workload.idle, repetition.timeout)
        if variant.params.get("path") == "cli":
            return measure.startup_cli(
                client, measure.Cli((docker_cli(),)), spec, repetition.timeout
            )
        return measure.startup_api(client, spec, repetition.timeout)

    def teardown(self) -> None:
        """Remove every container and volume this backend instance created."""
        if self._client is None:
            return
        for executor in self._executors.values():
            executor.discard()
        self._executors.clear()
        self._networks.clear()
        try:
            if self._ownership is not None:
                remove_run(self._client, self._ownership.run)
        finally:
            # Closed so no socket outlives the run; the next prepare() reconnects.
            self._client.close()
            self._client = None

    def notes(self) -> list[str]:
        """Skipped runtimes and leftovers removed or kept, for environment.json and the report."""
        return list(self._notes)

    def environment(self) -> dict[str, Any]:
        """Engine, API, storage and cgroup drivers, runtimes, seccomp, image, kernel."""
        env: dict[str, Any] = {"host_kernel": os.uname().release}
        try:
            client = self._connect()
            info = client.info()
            version = client.version()
        except Exception as exc:  # environment capture must never break a run
            env["error"] = str(exc)
            return env
        env.update(engine_facts(info, version))
        try:
            tag = self._image()
            env["image"] = tag
            env["image_id"] = client.images.get(tag).id
        except Exception as exc:  # image missing is reported, not raised
            env["image_error"] = str(exc)
        return env
