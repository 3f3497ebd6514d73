"""The sandbox backend: bare kernel isolation mechanisms through bubblewrap, no engine.

Each variant is one rung of the isolation ladder, stacking one more mechanism:

* ``layers=namespaces``: ``bwrap --unshare-all`` (user, pid, net, ipc, uts, cgroup, mount
  namespaces), the shared guest rootfs bind-mounted read-only as ``/``;
* ``layers=namespaces+cgroup``: the same, started inside a transient cgroup with the scenario's
  limits (:mod:`bench.backends.cgroup`, the native backend's mechanism; created even without
  limits, as Docker creates one for every container);
* ``layers=namespaces+cgroup+seccomp``: plus a container's default seccomp profile compiled
  with libseccomp (:mod:`bench.backends.sandbox.seccomp`) and loaded by ``bwrap --seccomp``.

Everything else is the native backend's machinery (it *is* a native launch, wrapped): the
same executor, watchdog, startup clock and memory probe, so differences come from the layers.
Start-up is timed by native's C launcher (``isobench-launch``) around the whole bwrap process,
as ``hyperfine -N`` times ``bwrap ... probe ready``.

``network``: ``--unshare-all`` gives the sandbox a network namespace of its own holding only
its loopback; no interface joins it to the host's, so ``client: host`` has nothing to connect
to and is not generated (a note says why). ``client: inside`` runs server and client in one
sandbox per repetition (:data:`INSIDE_PAIR`), both under the rung's cgroup and seccomp filter.
``density``: N sandboxes each running ``probe idle`` (the native driver, wrapped), counted with
their bwrap processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

from bench.backends.base import Repetition
from bench.backends.cgroup import Cgroup, limits_text
from bench.backends.native.backend import NativeBackend
from bench.backends.native.placement import disk_directory, native_placement
from bench.backends.sandbox.seccomp import SeccompUnavailableError, compile_profile
from bench.envbuild.rootfs import rootfs_hash, rootfs_path
from bench.ownership import make_owned_dir
from bench.paths import cache_dir
from bench.scenario.model import (
    DensityWorkload,
    DiskWorkload,
    NetworkWorkload,
    Scenario,
    StartupWorkload,
)
from bench.values import Availability, BackendUnavailable, Outcome, Variant
from bench.workloads import GUEST_PROBE, ExecResult, Executor, disk_variant, run_disk
from bench.workloads.network import LOOPBACK, SERVER_PORT, host_cpu_pair, run_client

INSTALL_HINT: Final = "sudo scripts/provision sandbox (apt-get install bubblewrap)"
BUILD_HINT: Final = "isobench env build"
#: Where the repetition's work directory appears inside the sandbox (a bind mount).
WORK_MOUNT: Final = "/var/tmp/isobench"
#: Where the disk workload's directory (on the host filesystem native uses) appears.
DISK_MOUNT: Final = "/var/tmp/isobench-disk"
#: ``sh -c`` script of a network repetition (``$@``: the client's argv, ``$1`` the probe): the
#: server in the background; the client once the server printed its first line (after
#: listen()); the sandbox ends with the client (bwrap's pid 1 then takes the server along).
INSIDE_PAIR: Final = (
    'set -e; mkfifo /tmp/isobench-listening; "$1" netserver 127.0.0.1 "$4" $ISOBENCH_SERVER_CPU '
    '>/tmp/isobench-listening & read -r line </tmp/isobench-listening; exec "$@"'
)


def layer_variants(layers: Sequence[str]) -> list[Variant]:
    """One variant per rung: the first layer, then each next one stacked on the previous."""
    return [Variant.of(layers="+".join(layers[: i + 1])) for i in range(len(layers))]


def bwrap_argv(
    bwrap: str,
    rootfs: Path,
    seccomp_fd: int | None,
    work: Path | None,
    disk: Path | None = None,
    *,
    die_with_parent: bool = True,
) -> list[str]:
    """The bubblewrap command line (without the workload's argv)."""
    argv = [bwrap, "--unshare-all", *(["--die-with-parent"] if die_with_parent else [])]
    argv += ["--ro-bind", str(rootfs), "/"]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    argv += ["--tmpfs", "/run", "--tmpfs", "/var/tmp"]
    if work is not None:
        argv += ["--bind", str(work), WORK_MOUNT, "--chdir", WORK_MOUNT]
    if disk is not None:
        argv += ["--bind", str(disk), DISK_MOUNT]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--"]


@dataclass
class _Rung:
    """What one (scenario, variant) prepared: its cgroup, seccomp program and facts."""

    layers: str
    cgroup: Cgroup | None = None
    seccomp_fd: int | None = None
    limits_note: str = "none requested"
    facts: dict[str, str] = field(default_factory=dict)


class SandboxBackend(NativeBackend):
    """Workloads under bubblewrap: namespaces, + a cgroup, + seccomp, on the host kernel."""

    name = "sandbox"
    interleave = True

    def __init__(self) -> None:
        super().__init__()
        self._bwrap = shutil.which("bwrap")
        self._rootfs: Path | None = None
        self._seccomp_fd: int | None = None  # the running rung's, for _wrapped
        self._launch_lock = threading.Lock()
        self._rungs: dict[tuple[str, str], _Rung] = {}
        self._disk_bind: Path | None = None
        self._notes: list[str] = []

    # -- Backend protocol -------------------------------------------------------------------

    def availability(self) -> Availability:
        """bwrap installed, the shared rootfs built, and a sandbox actually starts."""
        if self._bwrap is None:
            return Availability(False, "bubblewrap (bwrap) is not installed", INSTALL_HINT)
        try:
            rootfs = self._tree()
        except BackendUnavailable as exc:
            return Availability(False, str(exc), BUILD_HINT)
        argv = [*bwrap_argv(self._bwrap, rootfs, None, None), GUEST_PROBE, "ready"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode != 0:
            reason = f"bwrap cannot start a sandbox here: {proc.stderr.strip()[-300:]}"
            return Availability(
                False, reason, "enable unprivileged user namespaces, or run as root"
            )
        return Availability(True)

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """One variant per rung of ``sandbox.layers`` (``direct=off`` for buffered disk I/O)."""
        workload = scenario.workload
        rungs = layer_variants(scenario.sandbox.layers)
        if isinstance(workload, DensityWorkload):
            return [
                Variant.of(**v.params, instances=str(n), start=mode)
                for v in rungs
                for n in workload.instances
                for mode in workload.start
            ]
        if isinstance(workload, NetworkWorkload):
            if "host" in workload.client:
                self._note(
                    f"{scenario.name}: a sandbox's network namespace holds only its own "
                    "loopback, which no host client can reach; client=host is not measured "
                    "(client=inside is)"
                )
            where = [w for w in workload.client if w == "inside"]
            return [Variant.of(**v.params, client=w) for v in rungs for w in where]
        extra = disk_variant(workload) if isinstance(workload, DiskWorkload) else {}
        return [Variant.of(**v.params, **extra) for v in rungs]

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Find the rootfs; create the rung's cgroup; compile the seccomp profile."""
        self._rootfs = self._tree()
        self._probe = Path(GUEST_PROBE)
        if isinstance(scenario.workload, StartupWorkload):
            self.launch_tool()  # the host-side launcher that times bwrap (native's)
        key = (scenario.hash, variant.label)
        if key in self._rungs:
            return
        layers = variant.params.get("layers", "namespaces")
        rung = _Rung(layers)
        self._rungs[key] = rung
        limits = scenario.limits
        if "cgroup" in rung.layers:
            self._counter += 1
            tag = f"isobench-sandbox-{os.getpid()}-{self._counter}"
            try:
                rung.cgroup = Cgroup.create(limits, tag, always=True)
            except OSError as exc:
                msg = f"cannot create a cgroup for the +cgroup rung: {exc.strerror or exc}"
                raise BackendUnavailable(msg) from exc
            wanted = limits_text(limits) or "no limits (accounting only)"
            rung.limits_note = f"{wanted} via {rung.cgroup.description}"
        elif limits.cpus is not None or limits.memory is not None:
            rung.limits_note = "NOT applied (this rung has no cgroup by design)"
        if "seccomp" in rung.layers:
            target = cache_dir() / "sandbox-seccomp.bpf"
            try:
                rung.facts = compile_profile(target)
            except SeccompUnavailableError as exc:
                msg = f"{exc} (install: {exc.hint})"
                raise BackendUnavailable(msg) from exc
            rung.seccomp_fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)

    def run(self, repetition: Repetition) -> Outcome:
        """The native workload code, run through bwrap under the variant's rung."""
        key = (repetition.scenario.hash, repetition.variant.label)
        if key not in self._rungs:
            self.prepare(repetition.scenario, repetition.variant)
        rung = self._rungs[key]
        # The native machinery reads these: select this rung's (variants interleave).
        self._cgroup, self._seccomp_fd = rung.cgroup, rung.seccomp_fd
        self._limits_note = rung.limits_note
        workload = repetition.scenario.workload
        if isinstance(workload, NetworkWorkload):
            outcome = self._with_facts(
                self._network_inside(workload, repetition), {"limits": self._limits_note}
            )
        else:
            outcome = super().run(repetition)
        facts = {**outcome.facts, "layers": rung.layers, **rung.facts}
        facts["kernel_host"] = os.uname().release
        if "cgroup" not in rung.layers:
            facts.pop("warning", None)  # the rung without a cgroup runs unlimited on purpose
        return Outcome(outcome.measurements, facts)

    def teardown(self) -> None:
        """Remove every rung's cgroup and close the seccomp programs."""
        self._cgroup = None
        self._seccomp_fd = None
        for rung in self._rungs.values():
            if rung.cgroup is not None:
                rung.cgroup.remove()
            if rung.seccomp_fd is not None:
                os.close(rung.seccomp_fd)
        self._rungs.clear()

    def notes(self) -> list[str]:
        """Nothing is ever skipped silently: cgroup or seccomp failures are prepare errors."""
        return list(self._notes)

    def environment(self) -> dict[str, Any]:
        """bwrap version, rootfs, the mechanisms of each rung."""
        version = ""
        if self._bwrap:
            proc = subprocess.run(
                [self._bwrap, "--version"], capture_output=True, text=True, check=False
            )
            version = proc.stdout.strip()
        return {
            "kind": "sandbox",
            "kernel": os.uname().release,
            "bwrap": self._bwrap,
            "bwrap_version": version,
            "rootfs": str(self._rootfs) if self._rootfs else None,
            "rungs": "namespaces (bwrap --unshare-all), +cgroup (transient cgroup),"
            " +seccomp (containers' default profile via libseccomp)",
        }

    # -- hooks into the native machinery ----------------------------------------------------

    @contextlib.contextmanager
    def _wrapped(
        self, argv: Sequence[str], cwd: Path | None
    ) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """bwrap's argv around ``argv``; this launch's own seccomp descriptor, closed after."""
        if self._bwrap is None or self._rootfs is None:
            msg = "sandbox backend used before prepare()"
            raise BackendUnavailable(msg)
        # --die-with-parent is PR_SET_PDEATHSIG, which fires when the launching *thread* ends:
        # density's launcher threads end while their sandboxes must idle on. Those rely on
        # the reaper alone (it ends every spawned group when the harness dies).
        main = threading.current_thread() is threading.main_thread()
        # bwrap reads the program to EOF: each launch gets its own offset (a new open file
        # description), so launches in a row or from density's threads never share one.
        # One launch at a time (density's threads), from the wrapping to the spawn: the native
        # spawn moves the harness into the rung's cgroup and back around it.
        with self._launch_lock:
            seccomp = None
            if self._seccomp_fd is not None:
                seccomp = os.open(f"/proc/self/fd/{self._seccomp_fd}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                prefix = bwrap_argv(
                    self._bwrap, self._rootfs, seccomp, cwd, self._disk_bind, die_with_parent=main
                )
                yield [*prefix, *argv], () if seccomp is None else (seccomp,)
            finally:
                if seccomp is not None:
                    os.close(seccomp)  # the spawned bwrap holds its own copy now

    def workload_pid(self, pid: int) -> int:
        """The probe under bwrap (bwrap keeps a monitor and a pid-1 process above it)."""
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        probe = [p for p in tree if p.name().startswith("isobench-probe")]
        return (probe or tree)[-1].pid

    def _disk(self, execute: Executor, workload: DiskWorkload, rep: Repetition) -> Outcome:
        """fio in a bind mount of the directory native writes to (same host filesystem)."""
        directory = disk_directory() / f"sandbox-{os.getpid()}-{rep.index}"
        shutil.rmtree(directory, ignore_errors=True)
        make_owned_dir(directory)  # a killed harness leaves it to the next run's sweep
        self._disk_bind = directory
        try:
            outcome = run_disk(execute, workload, DISK_MOUNT, rep.timeout)
            facts = {"storage": f"bind mount of {directory}", **native_placement(directory)}
        finally:
            self._disk_bind = None
            shutil.rmtree(directory, ignore_errors=True)
        return self._with_facts(outcome, facts)

    def _network_inside(self, workload: NetworkWorkload, rep: Repetition) -> Outcome:
        """Server and client in one sandbox, over its own loopback (see :data:`INSIDE_PAIR`)."""
        execute = self.executor(rep)

        # the placement rule of every backend: client on the first CPU, server on the second
        cpus = host_cpu_pair()
        server = "" if cpus is None else str(cpus[1])

        def pair(argv: Sequence[str], timeout: float) -> ExecResult:
            script = f"ISOBENCH_SERVER_CPU={server}; {INSIDE_PAIR}"
            return execute(["/bin/sh", "-c", script, "sh", *argv], timeout)

        outcome = run_client(pair, GUEST_PROBE, SERVER_PORT, workload, rep.timeout, cpus=cpus)
        path = f"sandbox loopback {LOOPBACK}:{SERVER_PORT} (its own network namespace)"
        return Outcome(outcome.measurements, {**outcome.facts, "net_path": path})

    def _note(self, note: str) -> None:
        if note not in self._notes:
            self._notes.append(note)

    def _tree(self) -> Path:
        try:
            tree = rootfs_path(rootfs_hash())
        except (OSError, RuntimeError) as exc:
            msg = f"cannot locate the shared rootfs: {exc}"
            raise BackendUnavailable(msg) from exc
        if not (tree / GUEST_PROBE.lstrip("/")).exists():
            msg = f"the shared rootfs is not built ({tree}); run: {BUILD_HINT}"
            raise BackendUnavailable(msg)
        return tree
