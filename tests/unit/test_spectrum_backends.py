"""Pure parts of the sandbox, podman and gVisor additions, on literal data."""

from __future__ import annotations

import pwd
from pathlib import Path

import pydantic
import pytest
from docker.types import Ulimit

from bench.backends.docker.measure import Spec, cli_argv
from bench.backends.docker.variants import runtime_args_params
from bench.backends.podman import PodmanBackend
from bench.backends.podman.service import Mode, _cli
from bench.backends.sandbox.backend import bwrap_argv, layer_variants
from bench.backends.sandbox.seccomp import select_rules
from bench.scenario.model import parse_scenario

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "syscalls": [
        {"names": ["getppid", "read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {
            "names": ["bpf"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
    ],
}


def test_seccomp_rules_follow_capabilities_and_architecture():
    default_errno, rules = select_rules(PROFILE, frozenset({"CAP_CHOWN"}), "amd64")
    assert default_errno == 38
    picked = [(r.names, r.action, r.errno_ret) for r in rules]
    assert (("getppid", "read"), "allow", 1) in picked
    assert (("arch_prctl",), "allow", 1) in picked
    assert not any("cacheflush" in names for names, _, _ in picked)  # another architecture
    assert (("bpf",), "errno", 1) in picked  # denied without CAP_SYS_ADMIN...
    assert (("bpf",), "allow", 1) not in picked
    _, admin = select_rules(PROFILE, frozenset({"CAP_SYS_ADMIN"}), "amd64")
    assert any(r.names == ("bpf",) and r.action == "allow" for r in admin)  # ...allowed with it
    (personality,) = [r for r in rules if r.names == ("personality",)]
    assert personality.args == ((0, "SCMP_CMP_EQ", 8, 0),)


def test_seccomp_rejects_what_it_cannot_compile_faithfully():
    with pytest.raises(ValueError, match="defaultAction"):
        select_rules({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})
    bad = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_LOG"}],
    }
    with pytest.raises(ValueError, match="unsupported action"):
        select_rules(bad, arch="amd64")


def test_sandbox_rungs_stack_layers():
    labels = [v.label for v in layer_variants(("namespaces", "cgroup", "seccomp"))]
    assert labels == [
        "layers=namespaces",
        "layers=namespaces+cgroup",
        "layers=namespaces+cgroup+seccomp",
    ]
    assert [v.label for v in layer_variants(("namespaces", "seccomp"))][-1] == (
        "layers=namespaces+seccomp"
    )


def test_sandbox_layers_are_validated_and_put_in_ladder_order():
    base = {"format_version": 1, "name": "s", "workload": {"kind": "startup"}}
    scenario = parse_scenario({**base, "sandbox": {"layers": ["namespaces", "seccomp", "cgroup"]}})
    assert scenario.sandbox.layers == ("namespaces", "cgroup", "seccomp")
    with pytest.raises(pydantic.ValidationError, match="namespaces first"):
        parse_scenario({**base, "sandbox": {"layers": ["cgroup"]}})
    with pytest.raises(pydantic.ValidationError):
        parse_scenario({**base, "podman": {"modes": ["rootfull"]}})
    # The ladder flag selects a report section; it does not change what a sample measures.
    assert parse_scenario({**base, "ladder": True}).hash == parse_scenario(base).hash


def test_bwrap_command_line():
    argv = bwrap_argv("/usr/bin/bwrap", Path("/r"), 7, Path("/w"))
    assert argv[:2] == ["/usr/bin/bwrap", "--unshare-all"]
    assert argv[argv.index("--ro-bind") + 1 : argv.index("--ro-bind") + 3] == ["/r", "/"]
    assert argv[argv.index("--seccomp") + 1] == "7"
    assert argv[argv.index("--bind") + 1 : argv.index("--bind") + 3] == ["/w", "/var/tmp/isobench"]
    assert argv[-1] == "--"
    assert "--seccomp" not in bwrap_argv("/usr/bin/bwrap", Path("/r"), None, None)


def test_gvisor_registration_becomes_variant_parameters():
    assert runtime_args_params(["--platform=ptrace", "--network=none"]) == {
        "platform": "ptrace",
        "sandbox_network": "none",
    }
    assert runtime_args_params([]) == {}
    assert runtime_args_params(["--debug"]) == {}


def test_podman_startup_has_an_api_and_a_cli_variant_per_mode():
    scenario = parse_scenario(
        {"format_version": 1, "name": "s", "workload": {"kind": "startup"}, "podman": {}}
    )
    labels = [v.label for v in PodmanBackend().variants(scenario)]
    assert labels == [
        "mode=rootful,storage=overlay,network=none",
        "mode=rootful,storage=overlay,network=none,path=cli",
        "mode=rootless,storage=overlay,network=none",
        "mode=rootless,storage=overlay,network=none,path=cli",
    ]


def test_podman_cli_runs_as_the_service_with_its_store_and_limits():
    user = pwd.struct_passwd(("u", "x", 1001, 1002, "", "/home/u", "/bin/sh"))
    rootless = _cli("/usr/bin/podman", Mode(True, "fuse-overlayfs"), user, Path("/run/user/1001"))
    assert rootless.prefix == (
        "/usr/bin/podman",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
        "--storage-driver=overlay",
        "--storage-opt=overlay.mount_program=/usr/bin/fuse-overlayfs",
        "--root=/home/u/.local/share/isobench/storage-fuse-overlayfs",
        "--runroot=/run/user/1001/isobench-fuse-overlayfs",
    )
    launch = rootless.run_kwargs()
    assert (launch["user"], launch["group"], launch["extra_groups"]) == (1001, 1002, [])
    assert launch["env"]["XDG_RUNTIME_DIR"] == "/run/user/1001"
    rootful = _cli("/usr/bin/podman", Mode(False, "overlay"), None, Path("/run/x"))
    assert rootful.prefix == (
        "/usr/bin/podman",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
    )
    assert rootful.run_kwargs()["user"] is None
    config = {"network_mode": "none", "ulimits": [Ulimit(name="nofile", soft=20, hard=20)]}
    argv = cli_argv(rootless, Spec("img:t", {"isobench": "1"}, "n1", config))
    assert argv[len(rootless.prefix) : len(rootless.prefix) + 5] == [
        "run",
        "--rm",
        "--name",
        "n1",
        "--label",
    ]
    assert "--ulimit nofile=20:20 img:t /opt/isobench/bin/isobench-probe ready" in " ".join(argv)
