"""Environment capture: health-check comparison (pure) and host facts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import sysinfo


def snapshot(pswpin: int = 0, pswpout: int = 0, throttle: int | None = None,
             load: float = 0.1, cpus: int = 2) -> dict[str, Any]:  # fmt: skip
    return {
        "swap": {"pswpin": pswpin, "pswpout": pswpout},
        "throttle": {} if throttle is None else {"cpu0/core_throttle_count": throttle},
        "loadavg": [load, load, load],
        "cpu_count": cpus,
    }


def test_quiet_run_has_no_warnings() -> None:
    health, warnings = sysinfo.health_report(snapshot(throttle=3), snapshot(throttle=3))
    assert warnings == []
    assert health["swap_delta"] == {"pswpin": 0, "pswpout": 0}
    assert health["throttle_delta"] == {"cpu0/core_throttle_count": 0}
    assert health["throttle_readable"] is True


def test_swapping_is_flagged() -> None:
    health, warnings = sysinfo.health_report(snapshot(), snapshot(pswpin=5, pswpout=7))
    assert health["swap_delta"] == {"pswpin": 5, "pswpout": 7}
    assert len(warnings) == 1
    assert "swapped" in warnings[0]


def test_throttling_is_flagged() -> None:
    _, warnings = sysinfo.health_report(snapshot(throttle=1), snapshot(throttle=4))
    assert any("throttling" in w and "3" in w for w in warnings)


def test_busy_host_at_start_is_flagged() -> None:
    _, warnings = sysinfo.health_report(snapshot(load=1.9, cpus=2), snapshot())
    assert any("load average 1.90 on 2 CPUs" in w for w in warnings)


def test_host_warnings() -> None:
    quiet = {"virtualized": False, "governor": "performance", "turbo": False}
    assert sysinfo.host_warnings(quiet) == []
    noisy = {"virtualized": True, "hypervisor": "kvm", "governor": "powersave", "turbo": True}
    text = " ".join(sysinfo.host_warnings(noisy))
    assert "virtualized (kvm)" in text
    assert "powersave" in text
    assert "turbo" in text


def test_real_snapshot_has_the_expected_shape() -> None:
    snap = sysinfo.health_snapshot()
    assert set(snap) == {"swap", "throttle", "loadavg", "cpu_count"}
    assert len(snap["loadavg"]) == 3
    if Path("/proc/vmstat").exists():
        assert set(snap["swap"]) == {"pswpin", "pswpout"}


def test_host_info_facts() -> None:
    host = sysinfo.host_info()
    assert host["cpu_count"] == os.cpu_count()
    assert host["kernel"] == os.uname().release
    assert host["memory_bytes"] > 0
    assert isinstance(host["virtualized"], bool)
    assert host["cgroup_version"] in (1, 2, None)
    vulnerabilities = Path("/sys/devices/system/cpu/vulnerabilities")
    if vulnerabilities.is_dir():
        assert set(host["mitigations"]) == {p.name for p in vulnerabilities.iterdir()}
    assert host["tools"]["python"].startswith("Python 3.")
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control")
    if default.exists():
        assert host["tcp_congestion_control"] == default.read_text().strip()


def test_tool_versions_skip_absent_tools() -> None:
    tools = {"missing": ("isobench-no-such-tool-xyz", "--version"), "sh": ("sh", "-c", "echo 1.2")}
    assert sysinfo.tool_versions(tools) == {"sh": "1.2"}


def test_harness_info_in_this_checkout() -> None:
    info = sysinfo.harness_info()
    assert info["python"] == ".".join(map(str, __import__("sys").version_info[:3]))
    if info["git_sha"] is not None:
        assert len(info["git_sha"]) == 40
        assert isinstance(info["git_dirty"], bool)


def test_filesystem_type(tmp_path: Path) -> None:
    assert sysinfo.filesystem_type(tmp_path) != ""
    if Path("/dev/shm").is_dir():
        assert sysinfo.filesystem_type(Path("/dev/shm")) == "tmpfs"
    assert sysinfo.filesystem_type(Path("/proc/self")) == "proc"
