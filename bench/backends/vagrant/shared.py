"""One VM kept across scenarios: booted once, paused between blocks, destroyed with the run.

A VM boot under software emulation costs about a minute, and ``syscall``, ``disk``,
``command`` and ``network`` need a running guest, not a fresh one: they share one VM per size
(the key is the variant's ``accel``/``cpus``/``memory``). Between its blocks the VM is
**paused** (``virsh suspend``: no vCPU runs, so it cannot steal CPU from the native and
container measurements of the next scenario) and resumed by the next scenario's
``prepare()``. Every sample records how the VM it ran on had been used
(``vm_scenarios_before``), so the reuse is visible in the data.

``startup``, ``memory`` and ``density`` keep their fresh VMs per repetition, and the kept VM
is destroyed before them: a second QEMU would share its library pages with the measured one
and lower that one's PSS (``memory.environment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from bench.values import BackendError, Variant

#: Workload kinds that run on a kept VM (brought up by prepare(), reused across scenarios).
SHARED_KINDS: Final = frozenset({"syscall", "disk", "command", "network"})
#: The variant parameters that make a VM (its size and accelerator); others (``direct=off``)
#: are how a workload runs on it.
VM_PARAMS: Final = ("accel", "cpus", "memory")


def vm_key(variant: Variant) -> str:
    """The kept-VM key of ``variant``: ``accel=tcg,cpus=2,memory=1024``."""
    params = variant.params
    return ",".join(f"{name}={params.get(name, '')}" for name in VM_PARAMS)


class PausableVm(Protocol):
    """What a kept VM needs of :class:`~bench.backends.vagrant.vm.VagrantVM`."""

    name: str

    def pause(self) -> None:
        """Stop the vCPUs, keep the memory."""
        ...

    def resume(self) -> None:
        """Run again after :meth:`pause`."""
        ...

    def destroy(self, timeout: float = ...) -> float:
        """Remove the VM for good."""
        ...


class KeptVm:
    """A booted VM, the scenarios it served and whether it is paused now."""

    def __init__(self, vm: PausableVm, key: str, facts: Mapping[str, str]) -> None:
        self.vm = vm
        self.key = key
        self.paused = False
        self.served: list[str] = []
        self._facts = dict(facts)

    def use(self, scenario: str) -> None:
        """Serve ``scenario`` next: resume if paused (raises BackendError if that fails)."""
        if self.paused:
            self.vm.resume()
            self.paused = False
        if not self.served or self.served[-1] != scenario:
            self.served.append(scenario)

    def pause(self) -> str | None:
        """Pause between blocks; the reason when it could not (the caller destroys it then)."""
        if self.paused:
            return None
        try:
            self.vm.pause()
        except BackendError as exc:
            return str(exc)
        self.paused = True
        return None

    def facts(self) -> dict[str, str]:
        """The VM's facts plus how it had been used before the scenario it serves now."""
        before = self.served[:-1]
        return {
            **self._facts,
            "vm_per_repetition": "kept",
            "vm_scenarios_before": ",".join(before) if before else "none (booted for this one)",
        }


__all__ = ["SHARED_KINDS", "KeptVm", "PausableVm", "vm_key"]
