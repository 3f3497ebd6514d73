"""Which hardware accelerator a VM can ACTUALLY use here: kvm, else tcg (emulation).

A ``/dev/kvm`` that opens is not proof. On hosts where it is served by kvm-pvm (a software
nested-virtualization module that only runs PVM-built guest kernels) a stock kernel hangs right
after SeaBIOS. So KVM counts as usable only when a probe boot of the guest's own kernel under
``qemu-system-x86_64 -accel kvm`` prints the kernel's boot messages and reaches init within a
short timeout. The verdict is cached per host boot (the cache key covers the boot id, the host
kernel release, the ``/dev/kvm`` device identity and the probed guest kernel).

``ISOBENCH_ACCEL=kvm|tcg`` forces the choice (recorded as forced). ``hvf`` (macOS) and ``whpx``
(Windows) are the names other hosts would report; they are not detected here.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from bench.paths import cache_dir
from bench.procgroup import kill_tree, spawn

ACCELERATORS: Final = ("kvm", "tcg", "hvf", "whpx")
KVM_DEVICE: Final = Path("/dev/kvm")
KVM_PVM_MODULE: Final = Path("/sys/module/kvm_pvm")
PROBE_TIMEOUT: Final = 15.0
#: The probe boot's command line: panic=-1 reboots at once, and -no-reboot then ends QEMU.
PROBE_CMDLINE: Final = "console=ttyS0 panic=-1 rdinit=/bin/true"
#: Serial-console lines proving the kernel ran and got as far as starting init.
BOOT_MARKER: Final = "Linux version"
INIT_MARKERS: Final = ("Run /", "Kernel panic", "Freeing unused kernel")
CACHE_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class AccelInfo:
    """The accelerator chosen for VMs, and the evidence behind the choice."""

    accelerator: str  # kvm | tcg | hvf | whpx
    reason: str
    kvm_device: bool  # /dev/kvm exists and opens read-write
    kvm_pvm: bool  # /dev/kvm is served by kvm-pvm
    host_virtualized: bool  # the host itself is a VM (nested virtualization)
    forced: bool = False
    probe_seconds: float | None = None  # wall time of the KVM probe boot, when one ran


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of one probe boot."""

    ok: bool
    seconds: float
    detail: str


def kvm_device_usable(device: Path = KVM_DEVICE) -> bool:
    """True when ``device`` exists and opens read-write (necessary, not sufficient)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def kvm_is_pvm(module: Path = KVM_PVM_MODULE) -> bool:
    """True when the kvm-pvm module is loaded (stock guest kernels hang under it)."""
    return module.exists()


def host_is_virtualized(cpuinfo: str | None = None) -> bool:
    """True when the CPU flags carry ``hypervisor`` (the host runs inside a VM)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return "hypervisor" in line.partition(":")[2].split()
    return False


def boot_reached_init(console: str) -> bool:
    """True when serial output shows the kernel booting and getting to init."""
    return BOOT_MARKER in console and any(m in console for m in INIT_MARKERS)


def probe_boot(
    kernel: Path, initrd: Path | None, accel: str, timeout: float = PROBE_TIMEOUT
) -> ProbeResult:
    """Boot ``kernel`` under ``-accel ACCEL`` until init starts or ``timeout`` passes."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        return ProbeResult(False, 0.0, "qemu-system-x86_64 not installed")
    argv = [qemu, "-accel", accel, "-m", "256", "-smp", "1", "-nodefaults", "-nographic"]
    argv += ["-no-reboot", "-serial", "stdio", "-kernel", str(kernel), "-append", PROBE_CMDLINE]
    if initrd is not None:
        argv += ["-initrd", str(initrd)]
    start = time.monotonic()
    proc = spawn(  # its own group, and it dies with the harness
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    chunks: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            chunks.append(line)
            if boot_reached_init("".join(chunks[-400:])):
                done.set()
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    done.wait(timeout)
    elapsed = time.monotonic() - start
    kill_tree(proc, grace=1.0, close=False)  # QEMU dead: the reader hits EOF
    thread.join(5)
    if proc.stdout is not None:
        proc.stdout.close()
    console = "".join(chunks)
    if boot_reached_init(console):
        return ProbeResult(True, elapsed, f"guest kernel reached init in {elapsed:.1f} s")
    if BOOT_MARKER in console:
        return ProbeResult(False, elapsed, f"kernel started but no init within {timeout:g} s")
    printable = re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|.)|[^\x20-\x7e\n]", "", console)
    tail = printable.strip().splitlines()[-1:] or ["no output"]
    return ProbeResult(
        False, elapsed, f"no kernel boot message within {timeout:g} s (last: {tail[0][:120]!r})"
    )


def _cache_key(probe_kernel: Path | None) -> str:
    parts = [str(CACHE_VERSION), platform.release()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        parts.append("no-boot-id")
    try:
        st = KVM_DEVICE.stat()
        parts += [str(st.st_rdev), str(st.st_ino), str(st.st_mtime_ns)]
    except OSError:
        parts.append("no-kvm")
    parts.append(str(probe_kernel) if probe_kernel else "no-kernel")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _default_probe_kernel() -> tuple[Path, Path | None] | None:
    """The guest kernel of an already-built rootfs (never builds one)."""
    from bench.envbuild.rootfs import kernel_files, rootfs_path  # noqa: PLC0415

    try:
        return kernel_files(rootfs_path())
    except (OSError, ValueError):
        return None


def _forced(value: str, pvm: bool, device: bool, nested: bool) -> AccelInfo:
    if value not in ACCELERATORS:
        msg = f"ISOBENCH_ACCEL={value!r}: expected one of {', '.join(ACCELERATORS)}"
        raise ValueError(msg)
    return AccelInfo(value, f"forced by ISOBENCH_ACCEL={value}", device, pvm, nested, forced=True)


def detect(
    probe_kernel: tuple[Path, Path | None] | None = None,
    *,
    use_cache: bool = True,
    timeout: float = PROBE_TIMEOUT,
) -> AccelInfo:
    """Detect the usable accelerator (``ISOBENCH_ACCEL`` overrides; cached per host boot)."""
    device, pvm, nested = kvm_device_usable(), kvm_is_pvm(), host_is_virtualized()
    forced = os.environ.get("ISOBENCH_ACCEL", "").strip().lower()
    if forced:
        return _forced(forced, pvm, device, nested)
    if not device:
        why = "absent" if not KVM_DEVICE.exists() else "not openable read-write"
        return AccelInfo("tcg", f"/dev/kvm {why}: emulating with TCG", device, pvm, nested)
    kernel = probe_kernel or _default_probe_kernel()
    cache = cache_dir() / f"accel-{_cache_key(kernel[0] if kernel else None)}.json"
    if use_cache and cache.exists():
        try:
            return AccelInfo(**json.loads(cache.read_text()))
        except (ValueError, TypeError):
            cache.unlink(missing_ok=True)
    info = _probe_and_decide(kernel, pvm, nested, timeout)
    if kernel is not None:  # an unprobed verdict is not cached: a later build can probe
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=1))
        tmp.replace(cache)
    return info


def _probe_and_decide(
    kernel: tuple[Path, Path | None] | None, pvm: bool, nested: bool, timeout: float
) -> AccelInfo:
    pvm_note = " (/dev/kvm is served by kvm-pvm, which runs only PVM guest kernels)" if pvm else ""
    if kernel is None:
        reason = "/dev/kvm opens but no guest kernel to probe-boot yet (isobench env build)"
        return AccelInfo("tcg", reason + pvm_note + ": TCG", True, pvm, nested)
    result = probe_boot(kernel[0], kernel[1], "kvm", timeout)
    if result.ok and not pvm:
        reason = f"KVM probe boot of {kernel[0].name}: {result.detail}"
        return AccelInfo("kvm", reason, True, pvm, nested, probe_seconds=result.seconds)
    if result.ok:
        # kvm-pvm booted this kernel after all (a PVM-capable guest kernel): still usable.
        reason = f"kvm-pvm loaded, but the probe boot of {kernel[0].name} worked: {result.detail}"
        return AccelInfo("kvm", reason, True, pvm, nested, probe_seconds=result.seconds)
    reason = f"KVM probe boot of {kernel[0].name} failed: {result.detail}{pvm_note}: TCG"
    return AccelInfo("tcg", reason, True, pvm, nested, probe_seconds=result.seconds)


def qemu_cmdline_accel(cmdline: list[str]) -> str | None:
    """The accelerator a QEMU command line asks for (``-accel X`` / ``-machine ...,accel=X``)."""
    for i, arg in enumerate(cmdline):
        nxt = cmdline[i + 1] if i + 1 < len(cmdline) else ""
        if arg in {"-accel", "--accel"} and nxt:
            return nxt.split(",", 1)[0]
        if arg in {"-machine", "-M"}:
            for opt in nxt.split(","):
                key, _, value = opt.partition("=")
                if key == "accel" and value:
                    return value.split(":", 1)[0]
        if arg == "-enable-kvm":
            return "kvm"
    return None
