"""The token bucket toward the API server and the Retry-After reading (rotator.policy.ratelimit)."""

from __future__ import annotations

import pytest

from rotator.policy.ratelimit import TokenBucket, retry_after_seconds


def test_a_burst_is_free_then_reservations_queue_at_qps() -> None:
    bucket = TokenBucket(qps=2.0, burst=3)
    assert [bucket.reserve(10.0) for _ in range(6)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    bucket = TokenBucket(qps=1.0, burst=2)
    assert [bucket.reserve(0.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve(1.0) == 0.0  # one token came back
    assert bucket.reserve(1.0) == 1.0
    assert [bucket.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 1.0]  # never more than the burst


def test_qps_zero_is_unlimited() -> None:
    bucket = TokenBucket(qps=0, burst=1)
    assert {bucket.reserve(0.0) for _ in range(1000)} == {0.0}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1 ", 1.0),
        ("0", 0.0),
        (None, None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_in_seconds_only(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds
