"""The VM stack on this host: is every layer there (tools, libvirtd, plugin, box), which versions.

Read-only checks behind :meth:`VagrantBackend.availability` and the backend's part of
environment.json; nothing here starts or changes a VM.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from typing import Any, Final

from bench.backends.vagrant import accel as accel_mod
from bench.backends.vagrant.vm import VIRSH, run_quiet
from bench.envbuild import box as box_mod
from bench.values import Availability

PROVISION_HINT: Final = "isobench provision  (or: sudo scripts/provision-libvirt.sh)"


def first_line(text: str) -> str:
    """The first line of a tool's output, surrounding blank space removed ('' if none)."""
    return text.strip().splitlines()[0] if text.strip() else ""


def availability(plugin_line: Callable[[], str]) -> Availability:
    """Vagrant, virsh, QEMU and ssh installed; libvirtd answering; vagrant-libvirt; the box."""
    for tool in ("vagrant", "virsh", "qemu-system-x86_64", "ssh"):
        if shutil.which(tool) is None:
            return Availability(False, f"{tool} is not installed", PROVISION_HINT)
    version = run_quiet([*VIRSH, "version"], 30)
    if version.returncode != 0:
        reason = "libvirtd not reachable at qemu:///system: " + first_line(version.stderr)
        return Availability(False, reason, PROVISION_HINT)
    if not plugin_line():
        return Availability(False, "the vagrant-libvirt plugin is not installed", PROVISION_HINT)
    try:
        name = box_mod.box_name()
    except FileNotFoundError as exc:
        return Availability(False, str(exc), PROVISION_HINT)
    if not box_mod.box_installed(name):
        return Availability(False, f"Vagrant box {name} is not built", "isobench env build")
    return Availability(True)


def versions(info: accel_mod.AccelInfo, vagrant: str | None, plugin: str) -> dict[str, Any]:
    """Accelerator evidence and the version of every layer, for environment.json."""
    qemu = run_quiet(["qemu-system-x86_64", "--version"], 30).stdout
    virsh = run_quiet([*VIRSH, "version"], 30).stdout
    libvirt = re.search(r"Using library: libvirt (\S+)", virsh)
    hypervisor = re.search(r"Running hypervisor: QEMU (\S+)", virsh)
    try:
        box: str | None = box_mod.box_name()
    except FileNotFoundError:
        box = None
    return {
        "accelerator": info.accelerator,
        "accelerator_reason": info.reason,
        "accelerator_forced": info.forced,
        "kvm_device": info.kvm_device,
        "kvm_pvm": info.kvm_pvm,
        "host_virtualized": info.host_virtualized,
        "nested": info.host_virtualized,
        "vagrant": vagrant,
        "vagrant_libvirt": plugin,
        "libvirt": libvirt.group(1) if libvirt else None,
        "qemu": first_line(qemu),
        "qemu_libvirt_hypervisor": hypervisor.group(1) if hypervisor else None,
        "box": box,
        "box_hash": box.rsplit("-", 1)[-1] if box else None,
        "box_kernel_cmdline": box_mod.KERNEL_CMDLINE,
    }
