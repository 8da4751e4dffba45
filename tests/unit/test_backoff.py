"""Retry delays: capped exponential growth with deterministic equal jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.policy.backoff import retry_delay


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "low", "high"),
    [
        pytest.param(0, 1.0, 60.0, 0.5, 1.0, id="first-retry"),
        pytest.param(1, 1.0, 60.0, 1.0, 2.0, id="second"),
        pytest.param(3, 1.0, 60.0, 4.0, 8.0, id="fourth"),
        pytest.param(5, 1.0, 60.0, 16.0, 32.0, id="sixth"),
        pytest.param(6, 1.0, 60.0, 30.0, 60.0, id="capped"),
        pytest.param(10_000, 1.0, 60.0, 30.0, 60.0, id="huge-attempt-no-overflow"),
        pytest.param(2, 0.25, 60.0, 0.5, 1.0, id="small-base"),
        pytest.param(0, 10.0, 5.0, 2.5, 5.0, id="base-above-cap"),
    ],
)
def test_delay_bounds(attempt: int, base: float, cap: float, low: float, high: float) -> None:
    delay = retry_delay(attempt, base, cap, seed="rotation-1")
    assert low <= delay <= high


def test_deterministic_for_a_seed() -> None:
    assert retry_delay(3, seed="a") == retry_delay(3, seed="a")
    assert [retry_delay(3, seed=s) for s in "abcdef"] != [retry_delay(3, seed="a")] * 6


def test_default_seed_is_usable() -> None:
    assert 0.5 <= retry_delay(0) <= 1.0


@pytest.mark.parametrize(
    ("attempt", "base", "cap"),
    [
        pytest.param(-1, 1.0, 60.0, id="negative-attempt"),
        pytest.param(0, 0.0, 60.0, id="zero-base"),
        pytest.param(0, 1.0, 0.0, id="zero-cap"),
        pytest.param(0, -1.0, 60.0, id="negative-base"),
    ],
)
def test_invalid_arguments(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        retry_delay(attempt, base, cap)


@given(
    attempt=st.integers(0, 5000),
    base=st.floats(0.001, 1000.0),
    cap=st.floats(0.001, 100_000.0),
    seed=st.text(max_size=30),
)
def test_never_exceeds_cap_nor_drops_below_half_the_first_delay(
    attempt: int, base: float, cap: float, seed: str
) -> None:
    delay = retry_delay(attempt, base, cap, seed=seed)
    assert delay <= cap
    assert delay >= min(base, cap) / 2


@given(attempt=st.integers(0, 200), seed=st.text(max_size=30))
def test_ceiling_grows_monotonically(attempt: int, seed: str) -> None:
    """Equal jitter keeps the order: attempt n+1 never waits less than attempt n, up to the cap."""
    now, later = retry_delay(attempt, seed=seed), retry_delay(attempt + 1, seed=seed)
    assert later >= min(now, 30.0)
