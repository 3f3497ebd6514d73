"""Unit tests for the Vagrant backend's parsers and pure helpers (no vagrant, no libvirt)."""

from __future__ import annotations

import pytest

from bench.backends.vagrant.backend import limits_prefix, parse_meminfo, variant_label
from bench.backends.vagrant.startup import (
    parse_domifaddr,
    parse_systemd_analyze,
    parse_timespan,
)
from bench.backends.vagrant.vm import DOMAIN_RE, parse_ssh_config, parse_vol_list
from bench.envbuild.box import BOX_PREFIX, box_dir, box_hash, box_name
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


def test_parse_domifaddr():
    out = (
        " Name       MAC address          Protocol     Address\n"
        "-------------------------------------------------------------------\n"
        " vnet0      52:54:00:8a:1b:2c    ipv4         192.168.121.25/24\n"
    )
    assert parse_domifaddr(out) == "192.168.121.25"
    assert parse_domifaddr(" Name  MAC address  Protocol  Address\n----\n") is None


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
