"""Environment capture: what the host is, which tools it has, and whether it stayed healthy.

Everything here reads the kernel's own files (/proc, /sys) or asks a tool for its version
with a short timeout; anything unreadable is recorded as ``None`` rather than guessed.
The before/after health checks follow BenchExec: a run during which the host swapped or
the CPU throttled is flagged in ``environment.json["warnings"]``, never silently trusted.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import psutil

from bench import __version__
from bench.paths import REPO_ROOT

_SYS_CPU: Final = Path("/sys/devices/system/cpu")

#: tool name -> argv printing its version (first non-empty output line is kept).
TOOLS: Final[dict[str, tuple[str, ...]]] = {
    "fio": ("fio", "--version"),
    "gcc": ("gcc", "--version"),
    "docker": ("docker", "--version"),
    "vagrant": ("vagrant", "--version"),
    "qemu-system-x86_64": ("qemu-system-x86_64", "--version"),
    "virsh": ("virsh", "--version"),
    "python": (sys.executable, "--version"),
    "perf": ("perf", "--version"),
    "hyperfine": ("hyperfine", "--version"),
}


def _read(path: Path | str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _run(argv: Sequence[str], timeout: float = 5.0) -> str | None:
    """First non-empty output line of ``argv``, or None if absent/failing/slow."""
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        return None
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def tool_versions(tools: Mapping[str, Sequence[str]] = TOOLS) -> dict[str, str]:
    """Version line of every tool present (absent tools are simply not listed)."""
    out: dict[str, str] = {}
    for name, argv in tools.items():
        version = _run(argv)
        if version is not None:
            out[name] = version
    return out


def harness_info() -> dict[str, Any]:
    """Harness version, git sha and dirtiness of the checkout, Python version."""
    sha = _run(("git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"))
    dirty: bool | None = None
    if sha is not None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            dirty = bool(proc.stdout.strip()) if proc.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            dirty = None
    if sha is not None and not re.fullmatch(r"[0-9a-f]{40}", sha):
        sha = None  # not a git checkout (git printed an error)
    return {
        "version": __version__,
        "git_sha": sha,
        "git_dirty": dirty,
        "python": platform.python_version(),
    }


def _cpuinfo() -> tuple[str | None, set[str]]:
    text = _read("/proc/cpuinfo") or ""
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def os_name() -> str | None:
    """PRETTY_NAME from /etc/os-release."""
    for line in (_read("/etc/os-release") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return None


def cgroup_info() -> dict[str, Any]:
    """cgroup version (2 = unified hierarchy at /sys/fs/cgroup), and hybrid layout if any."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return {"cgroup_version": 2, "cgroup_hybrid": False}
    if (root / "memory").is_dir() or (root / "cpu").is_dir():
        return {"cgroup_version": 1, "cgroup_hybrid": (root / "unified").is_dir()}
    return {"cgroup_version": None, "cgroup_hybrid": False}


def mitigations() -> dict[str, str]:
    """CPU vulnerability mitigations as the kernel reports them."""
    directory = _SYS_CPU / "vulnerabilities"
    out: dict[str, str] = {}
    if directory.is_dir():
        for entry in sorted(directory.iterdir()):
            text = _read(entry)
            if text is not None:
                out[entry.name] = text
    return out


def virtualization() -> dict[str, Any]:
    """Whether this host is itself a VM (and which hypervisor), plus container/kvm-pvm hints."""
    _, flags = _cpuinfo()
    hv_type = _read("/sys/hypervisor/type")
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    product = _read("/sys/class/dmi/id/product_name")
    detect_vm = _run(("systemd-detect-virt", "--vm"))
    detect_ct = _run(("systemd-detect-virt", "--container"))
    hypervisor = hv_type or (detect_vm if detect_vm not in (None, "none") else None)
    if hypervisor is None and vendor and product:
        hypervisor = f"{vendor} {product}"
    virtualized = "hypervisor" in flags or hv_type is not None or hypervisor is not None
    if virtualized and hypervisor is None:
        hypervisor = "unknown (cpuinfo hypervisor flag)"
    return {
        "virtualized": virtualized,
        "hypervisor": hypervisor,
        "dmi": {"sys_vendor": vendor, "product_name": product},
        "container": detect_ct if detect_ct not in (None, "none") else None,
        "kvm_pvm": Path("/sys/module/kvm_pvm").exists(),
        "kvm_device": Path("/dev/kvm").exists(),
        "cpu_virt_flags": sorted(flags & {"vmx", "svm"}),
    }


def governor_and_turbo() -> dict[str, Any]:
    """cpufreq governor of cpu0 and whether turbo/boost is enabled (None where unreadable)."""
    governor = _read(_SYS_CPU / "cpu0" / "cpufreq" / "scaling_governor")
    turbo: bool | None = None
    no_turbo = _read(_SYS_CPU / "intel_pstate" / "no_turbo")
    boost = _read(_SYS_CPU / "cpufreq" / "boost")
    if no_turbo is not None:
        turbo = no_turbo == "0"
    elif boost is not None:
        turbo = boost == "1"
    return {"governor": governor, "turbo": turbo}


#: Files that identify an installed system for as long as it exists (systemd's machine-id).
MACHINE_ID_FILES: Final = ("/etc/machine-id", "/var/lib/dbus/machine-id")
BOOT_ID_FILE: Final = "/proc/sys/kernel/random/boot_id"
DMI_FILES: Final = (
    "/sys/class/dmi/id/product_uuid",
    "/sys/class/dmi/id/board_serial",
    "/sys/class/dmi/id/product_name",
)


def host_identity(
    machine_id_files: Sequence[str] = MACHINE_ID_FILES,
    boot_id_file: str = BOOT_ID_FILE,
    dmi_files: Sequence[str] = DMI_FILES,
) -> dict[str, str]:
    """Who this host is: a fingerprint (16 hex digits) that never merges two machines.

    The hostname is only a label ("vm" names many machines). The fingerprint hashes the
    machine-id when one exists; otherwise DMI identifiers, CPU model, core count, memory and
    kernel, plus the boot id (so that two machines identical on paper stay apart, at the cost
    of a new fingerprint per boot). Hardware facts are hashed in every case, so a cloned
    machine-id on different hardware still yields two hosts. ``basis`` says what was used.
    """
    model, _ = _cpuinfo()
    hardware = [
        f"cpu={model}",
        f"cores={os.cpu_count()}",
        f"memory={psutil.virtual_memory().total}",
        f"arch={platform.machine()}",
    ]
    machine_id = next((v for f in machine_id_files if (v := (_read(f) or "").strip())), "")
    if machine_id:
        basis, parts = "machine-id", [f"machine-id={machine_id}", *hardware]
    else:
        dmi = [v for f in dmi_files if (v := (_read(f) or "").strip())]
        boot = (_read(boot_id_file) or "").strip()
        basis = "dmi+hardware+boot-id" if dmi else "hardware+kernel+boot-id"
        parts = [*(f"dmi={v}" for v in dmi), *hardware, f"kernel={platform.release()}"]
        parts.append(f"boot={boot}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "label": socket.gethostname(), "basis": basis}


def host_info() -> dict[str, Any]:
    """The ``host`` block of environment.json."""
    model, _ = _cpuinfo()
    uname = platform.uname()
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    virt = virtualization()
    return {
        "hostname": socket.gethostname(),
        "identity": host_identity(),
        "kernel": uname.release,
        "kernel_version": uname.version,
        "arch": uname.machine,
        "os": os_name(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "memory_bytes": psutil.virtual_memory().total,
        **cgroup_info(),
        "mitigations": mitigations(),
        **virt,
        **governor_and_turbo(),
        # The default for new TCP sockets (and for a userland proxy's own connections): a
        # stream's rate depends on it (docs/docker.md, "Congestion control").
        "tcp_congestion_control": tcp_congestion_default(),
        "tools": tool_versions(),
    }


#: The default congestion control of new TCP sockets (Linux; the same path in a guest).
TCP_CONGESTION_DEFAULT: Final = "/proc/sys/net/ipv4/tcp_congestion_control"


def tcp_congestion_default() -> str | None:
    """This host's default TCP congestion control (None where unreadable)."""
    return _read(TCP_CONGESTION_DEFAULT)


def filesystem_type(path: Path) -> str:
    """Type of the filesystem holding ``path`` (longest matching mount point)."""
    return filesystem_facts(path)["fs_type"]


def filesystem_facts(path: Path) -> dict[str, str]:
    """Where ``path`` lives: filesystem type, mount point, source device and st_dev (maj:min).

    Two paths are on the same filesystem exactly when their ``fs_dev`` match (a bind mount
    such as /var/lib/docker shows the same device as the filesystem it comes from).
    """
    target = str(path.resolve())
    best, fstype, source = "", "unknown", "unknown"
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") or "/"
        inside = target == mount or target.startswith(mount + "/") or mount == "/"
        if inside and len(mount) >= len(best):
            best, fstype, source = mount, part.fstype, part.device
    try:
        dev = Path(target).stat().st_dev
        dev_text = f"{os.major(dev)}:{os.minor(dev)}"
    except OSError:
        dev_text = "unknown"
    return {"fs_type": fstype, "fs_mount": best or "/", "fs_source": source, "fs_dev": dev_text}


# --- health (before/after each run) ----------------------------------------------------------


def vm_hwm(pid: int) -> int:
    """Peak resident set (VmHWM) of ``pid`` in bytes, 0 if unreadable.

    Used rather than getrusage()'s ru_maxrss, which survives execve() and so would include
    whatever exec'd the workload (a forked Python, ``runc init``...).
    """
    try:
        with Path(f"/proc/{pid}/status").open(encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def health_snapshot() -> dict[str, Any]:
    """Swap counters, thermal-throttle counters and load average, right now."""
    vmstat: dict[str, int] = {}
    for line in (_read("/proc/vmstat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key in {"pswpin", "pswpout"}:
            vmstat[key] = int(value)
    throttle: dict[str, int] = {}
    for counter in sorted(_SYS_CPU.glob("cpu[0-9]*/thermal_throttle/*_throttle_count")):
        text = _read(counter)
        if text is not None and text.isdigit():
            throttle[f"{counter.parent.parent.name}/{counter.name}"] = int(text)
    load1, load5, load15 = os.getloadavg()
    return {
        "swap": vmstat,
        "throttle": throttle,
        "loadavg": [load1, load5, load15],
        "cpu_count": os.cpu_count() or 1,
    }


def health_report(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Compare two snapshots: the ``health`` block and human warnings (pure)."""
    warnings: list[str] = []
    swap_delta = {key: after["swap"].get(key, 0) - value for key, value in before["swap"].items()}
    if any(v > 0 for v in swap_delta.values()):
        warnings.append(
            f"the host swapped during the run (pages in/out: {swap_delta}); "
            "memory and timing figures may be distorted"
        )
    throttle_delta = {
        key: after["throttle"].get(key, value) - value for key, value in before["throttle"].items()
    }
    throttled = {k: v for k, v in throttle_delta.items() if v > 0}
    if throttled:
        warnings.append(f"CPU thermal throttling occurred during the run: {throttled}")
    cpus = int(before.get("cpu_count", 1))
    load_before = float(before["loadavg"][0])
    if load_before > 0.5 * cpus:
        warnings.append(
            f"the host was busy when the run started (1-min load average {load_before:.2f} "
            f"on {cpus} CPUs); other activity adds noise"
        )
    health = {
        "before": dict(before),
        "after": dict(after),
        "swap_delta": swap_delta,
        "throttle_delta": throttle_delta,
        "throttle_readable": bool(before["throttle"]),
    }
    return health, warnings


def host_warnings(host: Mapping[str, Any]) -> list[str]:
    """Standing warnings about the host (virtualized, governor, turbo) — pure."""
    out: list[str] = []
    if host.get("virtualized"):
        out.append(
            f"the host is itself virtualized ({host.get('hypervisor')}): 'native' figures "
            "include the outer hypervisor's cost"
        )
    governor = host.get("governor")
    if governor not in (None, "performance"):
        out.append(f"CPU frequency governor is {governor!r}, not 'performance'")
    if host.get("turbo"):
        out.append("turbo/boost is enabled: clock speed varies with load and temperature")
    return out
