"""One Vagrant-managed VM: its directory, the Vagrant calls, SSH, its QEMU process.

Every VM gets its own directory ``<cache>/vagrant/<name>/`` holding a copy of the top-level
``Vagrantfile``, Vagrant's ``.vagrant`` state, the CLI log and the SSH settings; ``vagrant`` runs
with ``VAGRANT_CWD`` pointing there and ``ISOBENCH_*`` variables configuring the file. So several
VMs (one per size variant) can exist side by side, and an orphan can be handled by hand.

Vagrant is driven through python-vagrant (up, halt, destroy, status, ssh-config), each call under
the harness's watchdog (:mod:`.cli`). Commands in the guest run over plain ``ssh`` with the
options ``vagrant ssh-config`` printed, never ``vagrant ssh`` (~3 s of Ruby start-up per call).

Names are ``isobench-<pid>-<token>`` (libvirt domain ``<name>_default``); the VM's directory
holds an owner file (:mod:`bench.ownership`). :func:`destroy_orphans` removes domains, volumes
and directories whose owner is provably dead, and lists those it cannot prove are ours.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

from bench import ownership
from bench.backends.vagrant.accel import qemu_cmdline_accel
from bench.backends.vagrant.cli import VagrantCli, VagrantError
from bench.ownership import Leftover, Verdict, read_owner_file, remove_tree, write_owner_file
from bench.paths import cache_dir, resource
from bench.values import RepetitionTimeout
from bench.workloads import ExecResult

PREFIX: Final = "isobench-"
DOMAIN_RE: Final = re.compile(r"^isobench-(?P<pid>\d+)-(?P<token>[0-9a-f]+)(?:_|$)")
VIRSH: Final = ("virsh", "-c", "qemu:///system")
LIBVIRT_PIDDIR: Final = Path("/run/libvirt/qemu")
INSECURE_KEYS: Final = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant",
)
SSH_OPTIONS: Final = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
    "-o", "ServerAliveInterval=10",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class VmSpec:
    """What the Vagrantfile needs: box, size and accelerator."""

    box: str
    cpus: int
    memory_mb: int
    accel: str


def vms_root() -> Path:
    """Directory holding one sub-directory per VM the harness created."""
    root = cache_dir() / "vagrant"
    root.mkdir(parents=True, exist_ok=True)
    return root


def parse_ssh_config(text: str) -> dict[str, str]:
    """Options of the first ``Host`` block of ``vagrant ssh-config`` output (keys lowercased)."""
    options: dict[str, str] = {}
    seen_host = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key.lower() == "host":
            if seen_host:
                break
            seen_host = True
            options["host"] = value.strip()
            continue
        options[key.lower()] = value.strip().strip('"')
    if "hostname" not in options:
        msg = f"no HostName in vagrant ssh-config output: {text[-300:]!r}"
        raise VagrantError(msg)
    return options


def insecure_private_key() -> Path:
    """Vagrant's published insecure private key (the box authorizes its public half)."""
    for pattern in INSECURE_KEYS:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            return path
    legacy = Path.home() / ".vagrant.d" / "insecure_private_key"
    if legacy.exists():
        return legacy
    msg = "vagrant's insecure private key not found (apt-get install vagrant)"
    raise FileNotFoundError(msg)


def run_quiet(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short host command, never raising on failure or a missing binary."""
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))


class VagrantVM:
    """A VM in its own Vagrant directory (created lazily by :meth:`up`)."""

    def __init__(self, spec: VmSpec, root: Path | None = None, *, marker: bool = False) -> None:
        self.spec = spec
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.domain = f"{self.name}_default"
        self.dir = (root or vms_root()) / self.name
        self.dir.mkdir(parents=True)
        write_owner_file(self.dir)  # proves whose VM this is to a later cleanup
        shutil.copyfile(resource("Vagrantfile"), self.dir / "Vagrantfile")
        self.key = self.dir / "insecure_private_key"
        shutil.copyfile(insecure_private_key(), self.key)
        self.key.chmod(0o600)  # ssh refuses a group/world-readable private key
        self.log = self.dir / "vagrant.log"
        #: The readiness channel's host socket (the Vagrantfile adds the channel when set).
        self.marker_socket = self.dir / "marker.sock" if marker else None
        self.cli = VagrantCli(self.dir, self.env(), self.log)
        self.ssh_options: dict[str, str] | None = None

    # --- vagrant CLI (python-vagrant under the watchdog, see .cli) --------------------------

    def env(self) -> dict[str, str]:
        """Environment of every vagrant call for this VM."""
        env = {
            **os.environ,
            "VAGRANT_CWD": str(self.dir),
            "VAGRANT_NO_COLOR": "1",
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "ISOBENCH_BOX": self.spec.box,
            "ISOBENCH_VM_NAME": self.name,
            "ISOBENCH_CPUS": str(self.spec.cpus),
            "ISOBENCH_MEMORY_MB": str(self.spec.memory_mb),
            "ISOBENCH_ACCEL": self.spec.accel,
        }
        if self.marker_socket is not None:
            env["ISOBENCH_MARKER_SOCKET"] = str(self.marker_socket)
        return env

    def up(self, timeout: float) -> float:
        """``vagrant up --provider=libvirt``; return its wall time in seconds."""
        start = time.monotonic()
        self.cli.up(timeout)
        return time.monotonic() - start

    def halt(self, timeout: float) -> float:
        """``vagrant halt``; return its wall time in seconds."""
        start = time.monotonic()
        self.cli.halt(timeout)
        return time.monotonic() - start

    # --- SSH ----------------------------------------------------------------------------------

    def load_ssh_config(self, timeout: float = 60.0) -> dict[str, str]:
        """Ask Vagrant once for the SSH settings (``vagrant ssh-config``) and keep them."""
        text = self.cli.ssh_config(timeout)
        self.ssh_options = parse_ssh_config(text)
        (self.dir / "ssh_config").write_text(text)
        return self.ssh_options

    def ssh_argv(self, remote: str) -> list[str]:
        """Plain ssh (multiplexed over one master connection) running ``remote`` in the guest."""
        if self.ssh_options is None:
            self.load_ssh_config()
        # A persistent master connection: each call then opens a channel, not a TCP+key
        # exchange (~0.35 s instead of ~1.8 s per call under TCG).
        return [
            "ssh",
            "-F",
            str(self.dir / "ssh_config"),
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.dir / 'ctl'}",
            "-o",
            "ControlPersist=900",
            *SSH_OPTIONS,
            "default",
            "--",
            remote,
        ]

    def execute(
        self, argv: Sequence[str], timeout: float, *, prefix: Sequence[str] = ()
    ) -> ExecResult:
        """Run ``argv`` in the guest over SSH (an Executor); the guest enforces the timeout too."""
        remote = shlex.join(["timeout", "-k", "5", f"{timeout:g}", *prefix, *argv])
        start = time.monotonic()
        try:
            proc = subprocess.run(
                self.ssh_argv(remote),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout + 20,
                check=False,
            )
        except subprocess.TimeoutExpired:
            msg = f"{argv[0]} in the VM did not finish within {timeout:g} s"
            raise RepetitionTimeout(msg) from None
        wall = time.monotonic() - start
        if proc.returncode == 124:
            msg = f"{argv[0]} in the VM did not finish within {timeout:g} s"
            raise RepetitionTimeout(msg)
        if proc.returncode == 255:
            msg = f"ssh to the VM failed: {proc.stderr.strip()[-400:]}"
            raise VagrantError(msg)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr, wall)

    def close_ssh(self) -> None:
        """Stop this VM's SSH master connection (started by ssh, owned by us)."""
        if (self.dir / "ctl").exists():
            run_quiet(["ssh", "-o", f"ControlPath={self.dir / 'ctl'}", "-O", "exit", "default"], 15)

    # --- host-side view -----------------------------------------------------------------------

    def qemu_pid(self) -> int | None:
        """PID of this VM's QEMU process, from libvirt's pid file, checked against its cmdline."""
        return domain_qemu_pid(self.domain)

    def pause(self) -> None:
        """Suspend the domain (``virsh suspend``): its vCPUs stop, its memory stays."""
        self.close_ssh()  # an idle master would time out (ServerAliveInterval) meanwhile
        self._virsh("suspend")

    def resume(self) -> None:
        """Resume a suspended domain (``virsh resume``)."""
        self._virsh("resume")

    def _virsh(self, verb: str) -> None:
        proc = run_quiet([*VIRSH, verb, self.domain], 60)
        if proc.returncode != 0:
            msg = f"virsh {verb} {self.domain} failed: {proc.stderr.strip()[-400:]}"
            raise VagrantError(msg)

    def destroy(self, timeout: float = 180.0) -> float:
        """``vagrant destroy -f`` (falls back to virsh); return the vagrant call's wall time."""
        self.close_ssh()
        try:
            start = time.monotonic()
            self.cli.destroy(timeout)
            return time.monotonic() - start
        finally:
            if domain_exists(self.domain):
                force_remove_domain(self.domain)
            shutil.rmtree(self.dir, ignore_errors=True)


def domain_qemu_pid(domain: str) -> int | None:
    """PID of the QEMU process running libvirt domain ``domain``, or None."""
    try:
        pid = int((LIBVIRT_PIDDIR / f"{domain}.pid").read_text().strip())
        cmdline = psutil.Process(pid).cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if any(arg.startswith(f"guest={domain},") for arg in cmdline) else None


def qemu_accel_of(pid: int | None) -> str:
    """The accelerator in QEMU's actual command line (``/proc/PID/cmdline``), or "unknown"."""
    if pid is None:
        return "unknown"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "unknown"
    return qemu_cmdline_accel(argv) or "unknown"


def list_domains() -> list[str]:
    """Names of all libvirt domains (running or not)."""
    proc = run_quiet([*VIRSH, "list", "--all", "--name"], 30)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def domain_exists(domain: str) -> bool:
    """True when libvirt knows ``domain``."""
    return domain in list_domains()


def force_remove_domain(domain: str) -> None:
    """Destroy + undefine ``domain`` and delete its own volumes (not the shared box volume)."""
    run_quiet([*VIRSH, "destroy", domain], 60)
    run_quiet([*VIRSH, "undefine", domain, "--nvram"], 60)
    for volume in pool_volumes():
        if volume.startswith(f"{domain}."):
            run_quiet([*VIRSH, "vol-delete", "--pool", "default", volume], 60)


def parse_vol_list(text: str) -> list[str]:
    """Volume names from ``virsh vol-list`` (a Name/Path table; there is no ``--name``)."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("---")), len(lines))
    return [line.split()[0] for line in lines[start:] if line.strip()]


def pool_volumes(pool: str = "default") -> list[str]:
    """Volumes of libvirt storage pool ``pool`` (empty when the pool or libvirtd is missing)."""
    return parse_vol_list(run_quiet([*VIRSH, "vol-list", "--pool", pool], 30).stdout)


def leftovers() -> list[Leftover]:
    """Domains, pool volumes and VM directories named ``isobench-*``, with their owner's verdict.

    The owner token is the owner file in the VM's directory (``<cache>/vagrant/<name>/``):
    a domain or volume whose directory is gone (or never had one) cannot be proven ours.
    """
    root = cache_dir() / "vagrant"

    def judged(name: str) -> Verdict:
        match = DOMAIN_RE.match(name)
        vm_name = f"{PREFIX}{match['pid']}-{match['token']}" if match else name
        return ownership.verdict(read_owner_file(root / vm_name))

    found = [
        Leftover("libvirt domain", d, judged(d), functools.partial(force_remove_domain, d))
        for d in list_domains()
        if DOMAIN_RE.match(d)
    ]
    for volume in pool_volumes():
        if DOMAIN_RE.match(volume):
            argv = [*VIRSH, "vol-delete", "--pool", "default", volume]
            delete = functools.partial(run_quiet, argv, 60)
            found.append(Leftover("libvirt volume", volume, judged(volume), delete))
    for vm_dir in sorted(root.glob(PREFIX + "*")) if root.is_dir() else []:
        remove = functools.partial(_remove_vm_dir, vm_dir)
        found.append(Leftover("VM directory", str(vm_dir), judged(vm_dir.name), remove))
    return found


def _remove_vm_dir(vm_dir: Path) -> None:
    ctl = vm_dir / "ctl"
    if ctl.exists():
        run_quiet(["ssh", "-o", f"ControlPath={ctl}", "-O", "exit", "default"], 15)
    remove_tree(vm_dir)


def destroy_orphans() -> list[str]:
    """Remove what dead harness processes of this host left (domains, volumes, VM dirs).

    Returns what was removed (with why); what cannot be proven ours is kept (``isobench
    clean`` lists it).
    """
    result = ownership.sweep(leftovers())
    if result.removed:
        # Vagrant's machine index still lists the removed machines until pruned.
        run_quiet(["vagrant", "global-status", "--prune"], 120)
    return result.removed + [f"FAILED {item}" for item in result.failed]
