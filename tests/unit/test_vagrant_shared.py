"""The VM kept across scenarios (bench/backends/vagrant/shared.py), with a stand-in VM."""

from __future__ import annotations

from bench.backends.vagrant.cli import VagrantError
from bench.backends.vagrant.shared import SHARED_KINDS, KeptVm, vm_key
from bench.values import Variant


class StandIn:
    """Records pause/resume/destroy; fails where told to."""

    name = "isobench-1-abc"

    def __init__(self, *, fail: str = "") -> None:
        self.calls: list[str] = []
        self.fail = fail

    def _call(self, verb: str) -> None:
        self.calls.append(verb)
        if verb == self.fail:
            msg = f"virsh {verb} failed"
            raise VagrantError(msg)

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def destroy(self, timeout: float = 180.0) -> float:
        self._call("destroy")
        return 0.0


def test_the_key_is_the_vm_not_how_the_workload_runs_on_it() -> None:
    direct = Variant.of(accel="tcg", cpus="2", memory="1024")
    buffered = Variant.of(accel="tcg", cpus="2", memory="1024", direct="off")
    assert vm_key(direct) == vm_key(buffered) == "accel=tcg,cpus=2,memory=1024"
    assert vm_key(Variant.of(accel="tcg", cpus="2", memory="2048")) != vm_key(direct)
    assert {"startup", "memory"}.isdisjoint(SHARED_KINDS)  # fresh boots per repetition


def test_paused_between_scenarios_resumed_by_the_next_and_facts_say_so() -> None:
    vm = StandIn()
    kept = KeptVm(vm, "k", {"vm_name": vm.name})
    kept.use("disk")
    assert kept.facts()["vm_scenarios_before"] == "none (booted for this one)"
    kept.use("disk")  # more repetitions of the same scenario: still the first
    assert kept.pause() is None
    assert kept.pause() is None  # idempotent: one virsh call
    assert kept.paused
    kept.use("syscall")
    assert vm.calls == ["pause", "resume"]
    facts = kept.facts()
    assert (facts["vm_scenarios_before"], facts["vm_per_repetition"]) == ("disk", "kept")
    assert facts["vm_name"] == vm.name


def test_a_failed_pause_is_reported_not_raised() -> None:
    kept = KeptVm(StandIn(fail="pause"), "k", {})
    kept.use("disk")
    assert kept.pause() == "virsh pause failed"
    assert not kept.paused
