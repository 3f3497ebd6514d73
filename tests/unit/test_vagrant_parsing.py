"""Unit tests for the Vagrant backend's parsers and pure helpers (no vagrant, no libvirt)."""

from __future__ import annotations

import pytest

from bench.backends.vagrant.backend import limits_prefix, variant_label
from bench.backends.vagrant.marker import (
    Arrival,
    ChannelLog,
    guest_output,
    parse_marker,
    split_lines,
    startup_phases,
)
from bench.backends.vagrant.memory import guest_ram_mapping, parse_meminfo, parse_smaps
from bench.backends.vagrant.startup import parse_systemd_analyze, parse_timespan
from bench.backends.vagrant.vm import DOMAIN_RE, parse_ssh_config, parse_vol_list
from bench.envbuild import box as box_mod
from bench.envbuild.box import BOX_PREFIX, MARKER_PORT, box_dir, box_hash, box_name
from bench.paths import REPO_ROOT
from bench.scenario.model import Limits
from bench.values import BackendError

SSH_CONFIG = """\
Host default
  HostName 192.168.121.25
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /root/.vagrant.d/insecure_private_key
  IdentitiesOnly yes
  LogLevel FATAL

Host other
  HostName 10.0.0.1
"""


def test_parse_ssh_config_first_host_only():
    opts = parse_ssh_config(SSH_CONFIG)
    assert opts["host"] == "default"
    assert opts["hostname"] == "192.168.121.25"
    assert opts["user"] == "vagrant"
    assert opts["port"] == "22"
    assert opts["identityfile"] == "/root/.vagrant.d/insecure_private_key"


def test_parse_ssh_config_quoted_identity_file():
    text = 'Host default\n  HostName 127.0.0.1\n  IdentityFile "/home/a b/key"\n'
    assert parse_ssh_config(text)["identityfile"] == "/home/a b/key"


def test_parse_ssh_config_without_hostname_fails():
    with pytest.raises(BackendError, match="HostName"):
        parse_ssh_config("The provider for this Vagrant-managed machine is reporting...\n")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("16.952s", 16.952), ("850ms", 0.85), ("1min 2.345s", 62.345), ("1h 1min", 3660.0)],
)
def test_parse_timespan(text, seconds):
    assert parse_timespan(text) == pytest.approx(seconds)


def test_parse_systemd_analyze():
    out = (
        "Startup finished in 16.952s (kernel) + 41.892s (userspace) = 58.845s \n"
        "graphical.target reached after 41.144s in userspace.\n"
    )
    assert parse_systemd_analyze(out) == pytest.approx((16.952, 41.892))
    firmware = (
        "Startup finished in 1.2s (firmware) + 300ms (loader) + 2.5s (kernel)"
        " + 1min 3.1s (userspace) = 1min 7s"
    )
    assert parse_systemd_analyze(firmware) == pytest.approx((2.5, 63.1))


def test_parse_systemd_analyze_not_finished():
    with pytest.raises(ValueError, match="kernel/userspace"):
        parse_systemd_analyze("Bootup is not yet finished (org.freedesktop.systemd1...)\n")


def test_parse_meminfo_bytes():
    info = parse_meminfo(
        "MemTotal:         996364 kB\nMemAvailable:     820200 kB\nHugePages_Total:       0\n"
    )
    assert info["MemTotal"] == 996364 * 1024
    assert info["MemAvailable"] == 820200 * 1024
    assert info["HugePages_Total"] == 0


def test_variant_label_lists_accelerator_and_size_in_mib():
    variant = variant_label("tcg", 2, 1024 * 1024 * 1024)
    assert variant.label == "accel=tcg,cpus=2,memory=1024"
    assert variant.params == {"accel": "tcg", "cpus": "2", "memory": "1024"}
    buffered = variant_label("tcg", 2, 1024 * 1024 * 1024, {"direct": "off"})
    assert buffered.label == "accel=tcg,cpus=2,memory=1024,direct=off"


def test_limits_prefix():
    assert limits_prefix(Limits()) == []
    prefix = limits_prefix(Limits(cpus=1.5, memory=512 * 1024 * 1024))
    assert prefix[:4] == ["sudo", "-n", "systemd-run", "--scope"]
    assert "CPUQuota=150%" in prefix
    assert f"MemoryMax={512 * 1024 * 1024}" in prefix
    assert prefix[-1] == "--"


def test_domain_names_identify_the_owning_process():
    match = DOMAIN_RE.match("isobench-4242-a1b2c3_default")
    assert match is not None
    assert match["pid"] == "4242"
    assert DOMAIN_RE.match("isobench-4242-a1b2c3_default.img") is not None
    assert DOMAIN_RE.match("isobench-manual_default") is None
    assert DOMAIN_RE.match("isobench-VAGRANTSLASH-debian12-abc_vagrant_box_image_0_box.img") is None
    assert DOMAIN_RE.match("someone-else_default") is None


def test_box_name_is_content_hashed():
    assert box_hash("aaaaaaaaaaaa") != box_hash("bbbbbbbbbbbb")
    assert box_hash("aaaaaaaaaaaa") == box_hash("aaaaaaaaaaaa")
    name = box_name(box_hash("aaaaaaaaaaaa"))
    assert name.startswith(BOX_PREFIX + "-")
    assert box_dir(name).name == name.replace("/", "-VAGRANTSLASH-")


def test_parse_vol_list():
    out = (
        " Name                          Path\n"
        "---------------------------------------------------------------\n"
        " isobench-1-ab_default.img     /var/lib/libvirt/images/isobench-1-ab_default.img\n"
        " isobench-VAGRANTSLASH-debian12-x_vagrant_box_image_0_1_box.img   /var/lib/x.img\n"
        "\n"
    )
    assert parse_vol_list(out) == [
        "isobench-1-ab_default.img",
        "isobench-VAGRANTSLASH-debian12-x_vagrant_box_image_0_1_box.img",
    ]
    assert parse_vol_list("") == []


# --- the readiness channel (host timestamps, literal data) ------------------------------------

LAUNCH = 1000.0


def channel_log(**overrides: float | None) -> ChannelLog:
    """A boot as the channel sees it: QEMU connects at +9 s, exits at +178 s."""
    at = {"connected": 9.2, "ready": 96.58, "exit": 96.64, "ssh": 112.1, "closed": 178.5}
    at.update(overrides)
    lines = [
        ("ready", "isobench-marker ready"),
        ("exit", "ready_ns=1795851234000000000"),
        ("exit", "kernel=6.1.0-50-cloud-amd64"),
        ("exit", "isobench-marker exit rc=0"),
        ("ssh", "isobench-marker ssh rc=0"),
    ]
    arrivals = [Arrival(LAUNCH + at[key], text) for key, text in lines if at[key] is not None]
    connected, closed = at["connected"], at["closed"]
    return ChannelLog(
        connected=None if connected is None else LAUNCH + connected,
        closed=None if closed is None else LAUNCH + closed,
        arrivals=arrivals,
    )


def test_split_lines_stamps_complete_lines_and_keeps_the_rest():
    arrivals, rest = split_lines(b"isobench-mar", b"ker ready\r\nready_ns=12\nkern", 5.0)
    assert arrivals == [Arrival(5.0, "isobench-marker ready"), Arrival(5.0, "ready_ns=12")]
    assert rest == b"kern"
    arrivals, rest = split_lines(rest, b"el=6.1\n", 6.0)
    assert arrivals == [Arrival(6.0, "kernel=6.1")]
    assert rest == b""


def test_parse_marker():
    assert parse_marker("isobench-marker ssh rc=0") == ("ssh", {"rc": "0"})
    assert parse_marker("isobench-marker ready") == ("ready", {})
    assert parse_marker("ready_ns=12") is None


def test_startup_phases_from_marker_arrivals():
    log = channel_log()
    phases = startup_phases(LAUNCH, log)
    assert phases == pytest.approx(
        {
            "startup.domain": 9.2,
            "startup.ready": 96.58,
            "startup.total": 96.64,
            "startup.ssh": 112.1,
        }
    )
    assert "kernel=6.1.0-50-cloud-amd64" in guest_output(log)
    assert "isobench-marker" not in guest_output(log)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ready": -0.5}, r"startup.ready at -0.500 s lies outside \[launch, exit\]"),
        ({"ssh": 200.0}, r"startup.ssh at \+200.000 s lies outside \[launch, exit\] = \[0, 178.5"),
        ({"connected": -1.0}, "startup.domain"),
        ({"ready": None}, "`isobench-marker ready` line never arrived"),
        ({"ssh": None}, "`isobench-marker ssh` line never arrived"),
        ({"connected": None}, "QEMU never connected"),
        ({"closed": None}, "QEMU's exit was not observed"),
    ],
)
def test_startup_phases_refuse_figures_outside_launch_and_exit(overrides, reason):
    with pytest.raises(BackendError, match=reason):
        startup_phases(LAUNCH, channel_log(**overrides))


def test_startup_phases_refuse_a_failed_guest_step():
    log = channel_log()
    log.arrivals[-1] = Arrival(LAUNCH + 112.1, "isobench-marker ssh rc=1")
    with pytest.raises(BackendError, match="rc=1"):
        startup_phases(LAUNCH, log)


def test_the_vagrantfile_and_the_box_name_the_same_marker_port():
    vagrantfile = (REPO_ROOT / "Vagrantfile").read_text()
    assert f'target_name: "{MARKER_PORT}"' in vagrantfile
    assert 'source_mode: "connect"' in vagrantfile
    rule = box_mod.GUEST_FILES["/etc/udev/rules.d/60-isobench-marker.rules"][1]
    assert f'ATTR{{name}}=="{MARKER_PORT}"' in rule
    assert f"/dev/virtio-ports/{MARKER_PORT}" in box_mod.GUEST_FILES[box_mod.MARKER_SCRIPT][1]


def test_the_vagrantfile_boots_the_box_kernel_line_with_a_machine_id_per_vm():
    # Without its own machine id every VM of the box has the same DHCP identity, and VMs booted
    # at once (density, start=concurrent) wait for a lease dnsmasq gave to another one.
    vagrantfile = (REPO_ROOT / "Vagrantfile").read_text()
    assert f'KERNEL_CMDLINE = "{box_mod.KERNEL_CMDLINE}"' in vagrantfile
    assert 'libvirt.cmd_line = "#{KERNEL_CMDLINE} systemd.machine_id=#{MACHINE_ID}"' in vagrantfile
    assert "MACHINE_ID = Digest::SHA256.hexdigest(" in vagrantfile


def test_box_hash_covers_the_guest_files(monkeypatch):
    before = box_hash("aaaaaaaaaaaa")
    changed = dict(box_mod.GUEST_FILES)
    changed[box_mod.MARKER_SCRIPT] = (0o755, "#!/bin/sh\n")
    monkeypatch.setattr(box_mod, "GUEST_FILES", changed)
    assert box_hash("aaaaaaaaaaaa") != before


# --- QEMU's memory (literal /proc text) ---------------------------------------------------------

SMAPS = """\
55d0c8a4b000-55d0c8c4b000 r--p 00000000 08:01 1234   /usr/bin/qemu-system-x86_64
Size:               2048 kB
Rss:                2048 kB
Pss:                1024 kB
VmFlags: rd mr mw me sd
7f9a83e00000-7f9ac3e00000 rw-p 00000000 00:00 0
Size:            1048576 kB
Rss:              202752 kB
Pss:              202752 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac sd
7f9ac4000000-7f9ac7ff0000 rwxp 00000000 00:00 0
Size:              65472 kB
Rss:               65472 kB
Pss:               65472 kB
7ffd8a1d4000-7ffd8a1f5000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  40 kB
Pss:                  40 kB
"""


def test_guest_ram_is_the_anonymous_mapping_as_large_as_the_configured_ram():
    mappings = parse_smaps(SMAPS)
    assert [m.name for m in mappings] == ["/usr/bin/qemu-system-x86_64", "", "", "[stack]"]
    ram = guest_ram_mapping(mappings, 1024 * 1024 * 1024)
    assert ram is not None
    assert ram.start == 0x7F9A83E00000
    assert ram.rss == 202752 * 1024
    # A size that matches nothing (or more than one mapping) is not guessed.
    assert guest_ram_mapping(mappings, 512 * 1024 * 1024) is None
    assert guest_ram_mapping([*mappings, mappings[1]], 1024 * 1024 * 1024) is None
