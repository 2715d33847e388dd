"""The live stream's scheduling, a pure function: which windows may run as frames arrive."""

from __future__ import annotations

import pytest

from bcdi_online.inpainting import WindowPlan, rocking_windows
from bcdi_online.inpainting._plan import schedule_stream


def _feed(n_total: int, plan: WindowPlan, expected: int | None = None):
    """Feed frames one at a time; return what was settled, held and final at each step."""
    next_start, settled, held, finals = 0, [], [], []
    for n in range(1, n_total + 1):
        step = schedule_stream(
            n, next_start, plan, expected_frames=expected, done=set(settled) | set(held)
        )
        next_start = step.next_start
        settled += step.settle
        held += step.speculate
        finals.append(step.final)
    return settled, held, finals


@pytest.mark.parametrize("n_total", [32, 33, 40, 47, 64, 65, 96, 128, 131])
def test_every_settled_window_is_in_the_offline_plan_of_the_scan(n_total) -> None:
    plan = WindowPlan()
    settled, held, finals = _feed(n_total, plan)
    assert held == []  # nothing speculative without an expected length
    assert set(settled) <= set(rocking_windows(n_total, plan))
    assert settled == sorted(settled) and len(set(settled)) == len(settled)
    # the final frames only grow, and never reach the frames a later window covers
    assert finals == sorted(finals)
    assert finals[-1] <= max(0, n_total - plan.depth - plan.tail_reserve)


def test_settled_windows_wait_for_their_settling_frames() -> None:
    plan = WindowPlan()
    first = plan.depth + plan.settle_frames
    assert schedule_stream(first - 1, 0, plan).settle == []
    step = schedule_stream(first, 0, plan)
    assert step.settle == [(0, plan.depth)] and step.next_start == plan.stride


def test_an_expected_length_runs_the_rest_of_its_plan_early_once() -> None:
    plan = WindowPlan()
    expected = 80
    settled, held, _ = _feed(expected, plan, expected=expected)
    offline = rocking_windows(expected, plan)
    assert set(settled) | set(held) == set(offline)  # all of it ran before the end
    assert len(set(held)) == len(held)  # each held once; settling commits a held result
    # frames beyond the expected length: no more speculation
    assert schedule_stream(expected + 1, 0, plan, expected_frames=expected).speculate == []
