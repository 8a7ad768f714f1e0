"""The one backoff policy: bounded exponential ceilings, jitter inside them, bad settings refused."""

from __future__ import annotations

import pytest

from wechat.retry import Backoff


@pytest.mark.parametrize(
    ("backoff", "ceilings"),
    [
        (Backoff(base_seconds=2, cap_seconds=300), [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]),
        (Backoff(base_seconds=2, cap_seconds=120, jitter=0), [2, 4, 8, 16, 32, 64, 120, 120, 120, 120]),
        (Backoff(base_seconds=30, cap_seconds=3600), [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]),
        (Backoff(base_seconds=0, cap_seconds=0), [0] * 10),
    ],
    ids=["deletions", "authorization-events", "webhooks", "immediate"],
)
def test_the_ceiling_doubles_per_failure_up_to_the_cap(backoff, ceilings):
    assert [backoff.ceiling(n) for n in range(1, 11)] == ceilings


@pytest.mark.parametrize(("jitter", "low"), [(0, 1.0), (0.2, 0.8), (0.5, 0.5), (1, 0.0)])
def test_jitter_keeps_every_delay_between_its_share_of_the_ceiling_and_the_ceiling(jitter, low):
    backoff = Backoff(base_seconds=10, cap_seconds=1000, jitter=jitter)
    for failures in range(1, 9):
        ceiling = backoff.ceiling(failures)
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(ceiling * low <= d <= ceiling for d in delays)
        if jitter:
            assert len(set(delays)) > 1  # spread out, not all at once
        else:
            assert set(delays) == {ceiling}


def test_a_huge_failure_count_stays_at_the_cap():
    assert Backoff(base_seconds=2, cap_seconds=300, jitter=0).delay(10_000) == 300


def test_zero_or_negative_failures_wait_the_base():
    assert Backoff(base_seconds=2, cap_seconds=300, jitter=0).delay(0) == 2


@pytest.mark.parametrize(
    "kwargs", [{"jitter": -0.1}, {"jitter": 1.5}, {"base_seconds": -1}, {"cap_seconds": -1}], ids=str
)
def test_impossible_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)
