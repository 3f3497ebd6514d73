"""Unit tests for accelerator detection helpers (no VM, no QEMU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.backends.vagrant import accel

CPUINFO_VM = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm\n"
CPUINFO_METAL = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx lahf_lm\n"


def test_host_virtualized_reads_hypervisor_flag():
    assert accel.host_is_virtualized(CPUINFO_VM) is True
    assert accel.host_is_virtualized(CPUINFO_METAL) is False
    assert accel.host_is_virtualized("") is False


def test_boot_reached_init_needs_kernel_and_init_markers():
    seabios_only = "SeaBIOS (version 1.16.2)\nBooting from ROM...\nProbing EDD... ok\n"
    assert not accel.boot_reached_init(seabios_only)
    started = "[    0.000000] Linux version 6.1.0-50-cloud-amd64 (gcc-12)\n"
    assert not accel.boot_reached_init(started)
    assert accel.boot_reached_init(started + "[    3.1] Run /bin/true as init process\n")
    assert accel.boot_reached_init(started + "[    4.1] Kernel panic - not syncing\n")


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["qemu-system-x86_64", "-name", "guest=x", "-accel", "tcg", "-cpu", "qemu64"], "tcg"),
        (["qemu-system-x86_64", "-machine", "pc-i440fx-7.2,accel=kvm,usb=off"], "kvm"),
        (["qemu-system-x86_64", "-machine", "q35,accel=kvm:tcg"], "kvm"),
        (["qemu-system-x86_64", "-enable-kvm", "-m", "512"], "kvm"),
        (["qemu-system-x86_64", "-accel", "kvm,kernel-irqchip=on"], "kvm"),
        (["qemu-system-x86_64", "-m", "512"], None),
    ],
)
def test_qemu_cmdline_accel(cmdline, expected):
    assert accel.qemu_cmdline_accel(cmdline) == expected


def test_forced_accelerator_is_recorded(monkeypatch):
    monkeypatch.setenv("ISOBENCH_ACCEL", "tcg")
    info = accel.detect(use_cache=False)
    assert info.accelerator == "tcg"
    assert info.forced is True
    assert "ISOBENCH_ACCEL" in info.reason


def test_forced_unknown_accelerator_is_rejected(monkeypatch):
    monkeypatch.setenv("ISOBENCH_ACCEL", "xen")
    with pytest.raises(ValueError, match="ISOBENCH_ACCEL"):
        accel.detect(use_cache=False)


def test_no_kvm_device_means_tcg(monkeypatch, tmp_path):
    monkeypatch.delenv("ISOBENCH_ACCEL", raising=False)
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "kvm")
    monkeypatch.setattr(accel, "kvm_device_usable", lambda device=None: False)
    info = accel.detect(use_cache=False)
    assert info.accelerator == "tcg"
    assert "absent" in info.reason
    assert info.forced is False


def test_failed_probe_falls_back_to_tcg_and_is_cached(monkeypatch, tmp_path):
    monkeypatch.delenv("ISOBENCH_ACCEL", raising=False)
    monkeypatch.setenv("ISOBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda device=None: True)
    monkeypatch.setattr(accel, "kvm_is_pvm", lambda module=None: True)
    calls: list[str] = []

    def fake_probe(kernel: Path, initrd: Path | None, acc: str, timeout: float):
        calls.append(acc)
        return accel.ProbeResult(False, timeout, "no kernel boot message within 15 s")

    monkeypatch.setattr(accel, "probe_boot", fake_probe)
    kernel = (tmp_path / "vmlinuz", tmp_path / "initrd.img")
    info = accel.detect(kernel)
    assert info.accelerator == "tcg"
    assert info.kvm_pvm is True
    assert "kvm-pvm" in info.reason
    again = accel.detect(kernel)  # served from the per-boot cache: no second probe
    assert again == info
    assert calls == ["kvm"]


def test_successful_probe_selects_kvm(monkeypatch, tmp_path):
    monkeypatch.delenv("ISOBENCH_ACCEL", raising=False)
    monkeypatch.setenv("ISOBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda device=None: True)
    monkeypatch.setattr(accel, "kvm_is_pvm", lambda module=None: False)
    monkeypatch.setattr(
        accel, "probe_boot", lambda *a, **k: accel.ProbeResult(True, 0.8, "reached init")
    )
    info = accel.detect((tmp_path / "vmlinuz", None), use_cache=False)
    assert info.accelerator == "kvm"
    assert info.probe_seconds == pytest.approx(0.8)
