"""The scenario model: immutability, hashing, defaults, refinements and its public API."""

from __future__ import annotations

import pydantic
import pytest

from bench import backends
from bench.scenario.model import (
    KNOWN_BACKENDS,
    SUPPORTED_FORMAT_VERSIONS,
    WORKLOAD_KINDS,
    CommandWorkload,
    DiskWorkload,
    DockerOptions,
    Limits,
    MemoryWorkload,
    PodmanOptions,
    Scenario,
    StartupWorkload,
    SyscallWorkload,
    VagrantOptions,
    VmSize,
    format_size,
    parse_scenario,
    workload_classes,
)

BASE = {"format_version": 1, "name": "s", "workload": {"kind": "syscall", "null_calls": 10}}


def scenario(**changes: object) -> Scenario:
    return parse_scenario({**BASE, **changes})


def test_public_api_names():
    assert KNOWN_BACKENDS == ("native", "sandbox", "docker", "podman", "vagrant")
    assert WORKLOAD_KINDS[:5] == ("startup", "syscall", "disk", "memory", "command")
    assert {"network", "density"} <= set(WORKLOAD_KINDS)
    assert SUPPORTED_FORMAT_VERSIONS == (1,)
    assert [c.model_fields["kind"].annotation.__args__[0] for c in workload_classes()] == list(
        WORKLOAD_KINDS
    )
    for model in (StartupWorkload, Limits, DockerOptions, VagrantOptions, VmSize, PodmanOptions):
        assert model.model_config["extra"] == "forbid"


def test_known_backends_match_the_registry():
    assert set(KNOWN_BACKENDS) == set(backends.REGISTRY)


def test_defaults():
    s = scenario()
    assert s.backends == KNOWN_BACKENDS
    assert (s.repeat, s.warmup, s.timeout, s.description) == (5, 1, 300.0, "")
    assert s.limits == Limits(cpus=None, memory=None)
    assert s.docker.runtimes == ("runc",)
    assert s.docker.storage == ("overlay", "volume")
    assert s.vagrant.sizes == (VmSize(cpus=2, memory=1024**3),)
    assert isinstance(s.workload, SyscallWorkload)
    assert s.workload.mixed_calls == 200_000


def test_models_are_immutable():
    s = scenario()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        s.repeat = 3  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        s.workload.kind = "disk"  # type: ignore[misc]
    assert isinstance(s.backends, tuple)
    assert isinstance(s.docker.runtimes, tuple)
    assert isinstance(s.vagrant.sizes, tuple)
    hash(s)  # frozen models are hashable


def test_hash_is_stable_across_spelling_order_and_defaults():
    explicit = parse_scenario(
        {
            "repeat": 5,
            "workload": {"null_calls": 10, "kind": "syscall", "mixed_calls": 200_000},
            "name": "s",
            "format_version": 1,
            "backends": ["native", "docker", "vagrant"],
            "limits": {},
        }
    )
    assert explicit.hash == scenario().hash
    assert len(scenario().hash) == 12
    assert int(scenario().hash, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"name": "t"},
        {"limits": {"cpus": 1}},
        {"docker": {"seccomp": ["unconfined"]}},
        {"vagrant": {"sizes": [{"cpus": 1}]}},
        {"workload": {"kind": "syscall", "null_calls": 11}},
        {"workload": {"kind": "startup"}},
    ],
)
def test_hash_changes_when_a_field_changes(change):
    assert scenario(**change).hash != scenario().hash


@pytest.mark.parametrize(
    "change",
    [
        {"description": "x"},
        {"repeat": 6},
        {"warmup": 0},
        {"timeout": 301},
        {"backends": ["native"]},
    ],
)
def test_hash_ignores_how_many_samples_and_where(change):
    assert scenario(**change).hash == scenario().hash


def test_with_repeat():
    s = scenario()
    t = s.with_repeat(2)
    assert (t.repeat, s.repeat) == (2, 5)
    assert t.hash == s.hash
    with pytest.raises(ValueError, match="repeat: expected greater than or equal to 1"):
        s.with_repeat(0)
    with pytest.raises(ValueError, match="less than or equal to 10000"):
        s.with_repeat(200_000_000)


def test_sizes_accept_units_and_integers():
    disk = scenario(workload={"kind": "disk", "file_size": "1.5GiB"}).workload
    assert isinstance(disk, DiskWorkload)
    assert disk.file_size == 1536 * 1024**2
    memory = scenario(workload={"kind": "memory", "alloc": 4096}).workload
    assert isinstance(memory, MemoryWorkload)
    assert memory.alloc == 4096
    assert scenario(limits={"memory": "64 MB"}).limits.memory == 64_000_000


@pytest.mark.parametrize("value", ["64M", "1g", "2k", True, 1.5, [1]])
def test_sizes_reject_ambiguous_or_wrong_values(value):
    with pytest.raises(pydantic.ValidationError):
        scenario(workload={"kind": "memory", "alloc": value})


def test_command_workload():
    w = scenario(workload={"kind": "command", "command": ["sysbench", "cpu", "run"]}).workload
    assert isinstance(w, CommandWorkload)
    assert w.command == ("sysbench", "cpu", "run")
    assert w.parser == "wall"
    for bad in ([], [""], "sysbench cpu run", [1]):
        with pytest.raises(pydantic.ValidationError):
            scenario(workload={"kind": "command", "command": bad})


def test_printable_unicode_names_are_allowed():
    name = "Début <b>&amp; 起動 v1.2 (x86_64)"
    assert scenario(name=name).name == name


@pytest.mark.parametrize("name", ["", "  ", "a/b", ".", "..", "a\nb", "a\x00b", "x" * 101])
def test_bad_names_are_rejected(name):
    with pytest.raises(pydantic.ValidationError):
        scenario(name=name)


def test_format_size():
    assert [format_size(n) for n in (4 << 20, 1 << 30, 1536 << 10, 1000, 0)] == [
        "4MiB",
        "1GiB",
        "1536KiB",
        "1000B",
        "0B",
    ]
