"""VM network and density: the probe's server in the guest, N idle VMs at once.

Network: the guest's ``probe netserver`` listens on all of the guest's interfaces, port
:data:`~bench.workloads.network.SERVER_PORT`, started in the background over SSH (it lives as
long as the VM; the VM is destroyed at teardown). A host client (the same probe source, built
on the host) connects to the **address of this VM's own domain on vagrant-libvirt's NAT
network** (the ``HostName`` ``vagrant ssh-config`` printed), after checking that address
against ``virsh domifaddr`` for the domain: the path is host -> the libvirt bridge -> the
domain's tap -> virtio-net, no userland proxy. ``client: inside`` runs the client in the guest
against the guest's own 127.0.0.1. No other address is ever used.

Density: each instance is a fresh VM (``vagrant up``) whose readiness channel (the virtio-serial
marker of the startup workload) stamps its ``ready`` instant; its host processes are its QEMU
process tree. A VM directory carries an owner file (:mod:`bench.ownership`) from its creation, so
a killed harness's VMs are swept by the next run; a live harness destroys every launched VM in
the density driver's ``finally`` (errors, timeouts, Ctrl-C). How many VMs may run at once is
capped by host memory (:func:`density_cap`): a count that does not fit is refused before any
VM starts, with the count that does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from bench.backends.vagrant.marker import BOX_HINT, MarkerChannel, first_marker
from bench.backends.vagrant.vm import VIRSH, VagrantVM, VmSpec, domain_qemu_pid, run_quiet
from bench.scenario.model import NetworkWorkload
from bench.sysinfo import TCP_CONGESTION_DEFAULT, tcp_congestion_default
from bench.values import BackendError, Outcome, RepetitionTimeout
from bench.workloads import GUEST_PROBE, ExecResult, Executor, parse_keyvalues
from bench.workloads import network as net
from bench.workloads.hostmem import process_tree

MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB
#: Where the guest's server writes its output (its port line).
SERVER_LOG: Final = "/tmp/isobench-netserver.log"
#: Start the server in its own session, detached from the SSH channel; print its first lines.
_START_SERVER: Final = f"""
setsid "$@" </dev/null >{SERVER_LOG} 2>&1 &
i=0
while [ $i -lt 300 ] && ! grep -q '^port=' {SERVER_LOG}; do sleep 0.1; i=$((i+1)); done
cat {SERVER_LOG}
"""
#: QEMU's own host memory beyond the guest's RAM, per accelerator. Under TCG the translated-code
#: cache dominates: a 1 GiB idle guest's QEMU measured 1.54 GB PSS here (docs/vagrant.md).
VMM_OVERHEAD: Final = {"tcg": 512 * MIB, "kvm": 128 * MIB}
#: Share of the host's MemAvailable density VMs may take (the rest: the harness, the host).
MEMORY_SHARE: Final = 0.8
_IPV4_RE: Final = re.compile(r"\bipv4\s+(\d+\.\d+\.\d+\.\d+)/\d+")
#: Set the guest's default congestion control to $1 unless it is already; print the result.
_ALIGN_CONGESTION: Final = f"""
was=$(cat {TCP_CONGESTION_DEFAULT})
[ "$was" = "$1" ] || echo "$1" | sudo -n tee {TCP_CONGESTION_DEFAULT} >/dev/null
echo "was=$was"; echo "now=$(cat {TCP_CONGESTION_DEFAULT})"
"""


# --- network ----------------------------------------------------------------------------------


def parse_domifaddr(text: str) -> list[str]:
    """IPv4 addresses in ``virsh domifaddr`` output (without the prefix length)."""
    return _IPV4_RE.findall(text)


def domain_address(domain: str, hostname: str) -> str:
    """``hostname`` if it is an IPv4 address of ``domain`` (per libvirt), else BackendError."""
    proc = run_quiet([*VIRSH, "domifaddr", domain, "--source", "lease"], 30)
    addresses = parse_domifaddr(proc.stdout)
    if hostname not in addresses:
        msg = (
            f"refusing to connect to {hostname!r}: not an address libvirt reports for domain "
            f"{domain} ({', '.join(addresses) or proc.stderr.strip() or 'none'})"
        )
        raise BackendError(msg)
    return hostname


class VmNetwork:
    """The probe's server in one VM and the clients that talk to it (host or inside)."""

    def __init__(self, vm: VagrantVM, host_probe: str, prefix: Sequence[str]) -> None:
        self.vm = vm
        self.host_probe = host_probe
        self.prefix = list(prefix)
        # The placement rule of every backend (bench.workloads.network.cpu_pair), inside the
        # guest: its client on vCPU 0, its server on vCPU 1 (nothing pinned with one vCPU).
        self.guest_pair = net.cpu_pair(range(vm.spec.cpus))
        self._endpoint: tuple[str, int] | None = None
        self._server_facts: dict[str, str] = {}

    def _align_congestion(self, timeout: float) -> None:
        """Give the guest the host's default congestion control, so senders are alike.

        A stream's rate depends on its sender's algorithm (docs/docker.md, "Congestion
        control"); the guest's own default (``cubic`` on Debian) would make a VM's inside
        client unlike every other sender of the run. The fact says what was done; when the
        guest cannot use the host's algorithm it keeps its own and the report flags the mix.
        """
        wanted = tcp_congestion_default()
        if not wanted:
            return  # not Linux's TCP: nothing to align with
        result = self.vm.execute(["sh", "-c", _ALIGN_CONGESTION, "sh", wanted], timeout)
        got = parse_keyvalues(result.stdout)
        was, now = got.get("was", "?"), got.get("now", "?")
        if now == wanted:
            fact = now if was == now else f"{now} (set to the host's; the guest's was {was})"
        else:
            why = (result.stderr or "").strip()[-200:] or f"exit status {result.returncode}"
            fact = f"{now} (the host's {wanted} could not be set: {why})"
        self._server_facts["net_guest_congestion"] = fact

    def _start(self, timeout: float) -> tuple[str, int]:
        if self._endpoint is not None:
            return self._endpoint
        self._align_congestion(timeout)
        everywhere = "0.0.0.0"  # noqa: S104 - the guest's own interfaces, reached as below
        server_cpu = None if self.guest_pair is None else self.guest_pair[1]
        argv = net.server_argv(GUEST_PROBE, everywhere, net.SERVER_PORT, server_cpu)
        result = self.vm.execute(["sh", "-c", _START_SERVER, "sh", *self.prefix, *argv], timeout)
        port = net.parse_server_port(result.stdout)
        self._server_facts |= net.server_facts(result.stdout)
        hostname = (self.vm.ssh_options or {}).get("hostname", "")
        self._endpoint = (domain_address(self.vm.domain, hostname), port)
        return self._endpoint

    def run(self, workload: NetworkWorkload, where: str, timeout: float) -> Outcome:
        """One client run from the host (to the VM's NAT address) or inside the guest."""
        deadline = time.monotonic() + timeout
        address, port = self._start(min(60.0, timeout))
        left = max(1.0, deadline - time.monotonic())
        if where == "inside":

            def inside(argv: Sequence[str], limit: float) -> ExecResult:
                return self.vm.execute(argv, limit, prefix=self.prefix)

            execute: Executor = inside
            outcome = net.run_client(
                execute, GUEST_PROBE, port, workload, left, cpus=self.guest_pair
            )
            facts = {"net_path": f"guest loopback {net.LOOPBACK}:{port}"}
        else:
            # host client on the host's first CPU; the server on the guest's second vCPU
            # (iperf3 -A CLIENT,SERVER pins each on its own machine the same way)
            host = net.host_cpu_pair()
            cpus = (
                None if host is None or self.guest_pair is None else (host[0], self.guest_pair[1])
            )
            outcome = net.run_client(
                net.host_execute,
                self.host_probe,
                port,
                workload,
                left,
                address=address,
                cpus=cpus,
            )
            facts = {
                "net_path": (
                    f"host -> {address}:{port}: domain {self.vm.domain} on vagrant-libvirt's "
                    "NAT network (libvirt bridge, tap, virtio-net; no proxy)"
                )
            }
        return Outcome(outcome.measurements, {**outcome.facts, **self._server_facts, **facts})


# --- density ----------------------------------------------------------------------------------


def vm_budget(memory_bytes: int, accelerator: str) -> int:
    """Host memory one idle VM may take: its guest RAM plus QEMU's own (see VMM_OVERHEAD)."""
    return memory_bytes + VMM_OVERHEAD.get(accelerator, VMM_OVERHEAD["tcg"])


def vms_that_fit(per_vm: int, available: int) -> int:
    """How many VMs of ``per_vm`` bytes fit in MEMORY_SHARE of ``available`` bytes."""
    return int(available * MEMORY_SHARE) // per_vm


def density_cap(n: int, memory_bytes: int, accelerator: str, available: int) -> str | None:
    """Why ``n`` VMs must not be started (None: they fit in host memory)."""
    per_vm = vm_budget(memory_bytes, accelerator)
    fit = vms_that_fit(per_vm, available)
    if n <= fit:
        return None
    overhead = per_vm - memory_bytes
    return (
        f"capped by host memory: {n} VMs need about {n * per_vm / GIB:.1f} GiB "
        f"({memory_bytes // MIB} MiB guest RAM + {overhead // MIB} MiB QEMU/{accelerator} "
        f"each), {MEMORY_SHARE:.0%} of the host's MemAvailable ({available / GIB:.1f} GiB) "
        f"holds at most {fit}; not started (instances: [{max(fit, 1)}] measures what fits)"
    )


@dataclass(slots=True)
class VmInstance:
    """One density VM and its readiness channel."""

    vm: VagrantVM
    channel: MarkerChannel
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class VmInstances:
    """Density instances: fresh VMs, ready at their guest's ``ready`` marker."""

    def __init__(self, spec: VmSpec, up_timeout: float, notes: list[str]) -> None:
        self.spec = spec
        self.up_timeout = up_timeout
        self.notes = notes
        #: Domain -> QEMU pid of each VM whose memory was measured (fact ``density_qemu``).
        self.measured: dict[str, int] = {}

    def launch(self, index: int, idle: float) -> VmInstance:
        """``vagrant up`` one VM with the readiness channel; destroyed if that fails."""
        vm = VagrantVM(self.spec, marker=True)
        assert vm.marker_socket is not None
        instance = VmInstance(vm, MarkerChannel(vm.marker_socket))
        try:
            instance.channel.start()
            vm.up(self.up_timeout)
        except BaseException:
            self.stop(instance)
            raise
        return instance

    def ready_ns(self, handle: VmInstance, deadline: float) -> int:
        """CLOCK_REALTIME ns of the guest's ``ready`` marker (stamped on CLOCK_MONOTONIC)."""
        if not handle.channel.wait_for({"ready"}, deadline):
            msg = f"VM {handle.vm.name} sent no ready marker before the timeout ({BOX_HINT})"
            raise RepetitionTimeout(msg)
        found = first_marker(handle.channel.log, "ready")
        assert found is not None
        # The marker's monotonic instant, carried over to the realtime clock the driver uses.
        return time.time_ns() - round((time.monotonic() - found[0]) * 1e9)

    def pids(self, handles: Sequence[VmInstance]) -> list[int]:
        """Each VM's QEMU process tree (libvirt's shared daemons are not counted)."""
        pids: list[int] = []
        for handle in handles:
            pid = domain_qemu_pid(handle.vm.domain)
            if pid is None:
                msg = f"no QEMU process found for domain {handle.vm.domain}"
                raise BackendError(msg)
            self.measured[handle.vm.domain] = pid
            pids += process_tree(pid)
        return pids

    def facts(self) -> dict[str, str]:
        """Which QEMU process each measured VM was (so a reader can match smem's rows)."""
        return {"density_qemu": " ".join(f"{d}={p}" for d, p in sorted(self.measured.items()))}

    def stop(self, handle: VmInstance) -> None:
        """Destroy one VM (idempotent; a failure is noted, never raised)."""
        with handle.lock:
            if handle.stopped:
                return
            handle.stopped = True
        handle.channel.close()
        try:
            handle.vm.destroy()
        except BackendError as exc:
            self.notes.append(f"destroying density VM {handle.vm.name} failed: {exc}")
