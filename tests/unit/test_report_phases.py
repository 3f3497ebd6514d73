"""Phase plots stack only sequential phases; the rest of startup.total is "other"."""

from __future__ import annotations

import pytest

from bench import report
from bench.report import plots
from tests import synthetic

DOCKER = {
    "startup.create": 0.045,
    "startup.start": 0.210,  # cumulative from launch: includes create
    "startup.exit": 0.030,
    "startup.remove": 0.040,  # after startup.total: teardown
    "startup.total": 0.260,
    "startup.ready": 0.200,
}


def test_docker_stack_uses_start_minus_create_and_ends_at_the_total() -> None:
    segments = dict(plots.phase_segments(DOCKER))
    assert list(segments) == ["create", "start", "exit", "other"]
    assert segments["start"] == pytest.approx(0.165)
    assert "remove" not in segments
    assert sum(segments.values()) == pytest.approx(DOCKER["startup.total"])
    # what the old plot drew: cumulative start stacked on create, plus remove
    old = sum(DOCKER[m] for m in ("startup.create", "startup.start", "startup.exit"))
    assert old + DOCKER["startup.remove"] > DOCKER["startup.total"]


def test_vm_phases_partition_the_host_timeline_up_to_the_total() -> None:
    # Figures of a real TCG boot: host instants from launch (guest markers) + guest durations.
    vm = {
        "startup.domain": 9.2,
        "startup.ready": 96.58,
        "startup.total": 96.64,
        "startup.kernel": 31.9,  # guest-side durations: userspace ends after the ready marker,
        "startup.userspace": 81.6,  # so they are not phases of startup.total
        "startup.ssh": 112.1,  # after the total: never stacked
    }
    segments = plots.phase_segments(vm)
    assert [name for name, _ in segments] == ["domain", "guest boot", "probe", "other"]
    assert dict(segments)["guest boot"] == pytest.approx(96.58 - 9.2)
    assert sum(width for _, width in segments) == pytest.approx(96.64)


def test_phases_that_overshoot_the_total_are_not_stacked() -> None:
    assert plots.phase_segments({**DOCKER, "startup.total": 0.1}) == []
    assert plots.phase_segments({"startup.total": 1.0, "startup.ready": 0.5}) == []


def test_report_draws_one_phase_plot_per_backend_with_phases() -> None:
    frame = synthetic.synthetic_frame(1500)
    html = report.render_html(frame, [synthetic.synthetic_environment()])
    assert "startup phases: docker" in html
    assert "startup phases: vagrant" in html
    assert "startup phases: native" not in html
    assert "shown as “other”" in html
