"""When the next rotation is due: interval, cron, maxAge ceiling and deterministic jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cronsim import CronSimError
from hypothesis import given
from hypothesis import strategies as st

from rotator.policy.schedule import jitter_offset, next_rotation_time

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)  # a Friday
H = timedelta(hours=1)
D = timedelta(days=1)
SEED = "shop/orders-db"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CASES = [
    # last_rotation, created_at, interval, cron, max_age, expected
    pytest.param(None, None, None, None, None, None, id="nothing-schedules"),
    pytest.param(NOW - 10 * D, None, 720 * H, None, None, NOW + 20 * D, id="interval-from-last-rotation"),
    pytest.param(None, NOW - 5 * D, 720 * H, None, None, NOW + 25 * D, id="interval-from-adopted-creation"),
    pytest.param(
        NOW - 10 * D, NOW - 40 * D, 720 * H, None, None, NOW + 20 * D, id="last-rotation-wins-anchor"
    ),
    pytest.param(None, None, 720 * H, None, None, NOW + 30 * D, id="interval-without-history-from-now"),
    pytest.param(NOW - 40 * D, None, 720 * H, None, None, NOW - 10 * D, id="overdue-is-in-the-past"),
    pytest.param(
        at("2026-11-22T03:00:00"),
        None,
        None,
        "0 3 * * SUN",
        None,
        at("2026-11-29T03:00:00"),
        id="cron-weekly",
    ),
    pytest.param(
        at("2026-11-29T02:59:00"),
        None,
        None,
        "0 3 * * SUN",
        None,
        at("2026-11-29T03:00:00"),
        id="cron-strictly-after-anchor",
    ),
    pytest.param(
        at("2026-11-29T03:00:00"),
        None,
        None,
        "0 3 * * SUN",
        None,
        at("2026-12-06T03:00:00"),
        id="cron-match-at-anchor-is-not-reused",
    ),
    pytest.param(
        at("2026-10-01T00:00:00"),
        None,
        None,
        "0 3 1 * *",
        None,
        at("2026-10-01T03:00:00"),
        id="cron-missed-while-down-is-past",
    ),
    pytest.param(None, None, None, "0 3 * * SUN", None, at("2026-11-29T03:00:00"), id="cron-without-history"),
    pytest.param(NOW - 10 * D, NOW - 10 * D, 720 * H, None, 15 * D, NOW + 5 * D, id="max-age-caps-interval"),
    pytest.param(
        NOW - 10 * D, NOW - 10 * D, 720 * H, None, 60 * D, NOW + 20 * D, id="max-age-above-interval"
    ),
    pytest.param(None, NOW - 10 * D, None, None, 15 * D, NOW + 5 * D, id="max-age-alone-schedules"),
    pytest.param(NOW - 3 * D, None, None, None, 15 * D, NOW + 12 * D, id="max-age-from-last-rotation"),
    pytest.param(
        at("2026-11-22T03:00:00"),
        at("2026-11-22T03:00:00"),
        None,
        "0 3 * * SUN",
        timedelta(days=3),
        at("2026-11-25T03:00:00"),
        id="max-age-caps-cron",
    ),
]


@pytest.mark.parametrize(("last", "created", "interval", "cron", "max_age", "expected"), CASES)
def test_next_rotation_time(
    last: datetime | None,
    created: datetime | None,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta | None,
    expected: datetime | None,
) -> None:
    assert next_rotation_time(last, created, interval, cron, max_age, None, SEED, NOW) == expected


def test_jitter_is_a_stable_offset_per_seed() -> None:
    """A restart recomputes the same time; a different policy lands elsewhere in the window."""
    args = (NOW - 10 * D, None, 720 * H, None, None, 2 * H)
    first = next_rotation_time(*args, SEED, NOW)
    again = next_rotation_time(*args, SEED, NOW + 3 * H)
    other = next_rotation_time(*args, "shop/payments-db", NOW)
    assert first == again
    assert first is not None
    assert NOW + 20 * D <= first < NOW + 20 * D + 2 * H
    assert other != first


def test_jitter_never_passes_the_max_age_ceiling() -> None:
    created = NOW - 10 * D
    result = next_rotation_time(created, created, 20 * D, None, 20 * D, 6 * H, SEED, NOW)
    assert result == created + 20 * D


def test_jitter_applies_to_cron() -> None:
    offset = jitter_offset(SEED, 30 * timedelta(minutes=1))
    result = next_rotation_time(
        at("2026-11-22T03:00:00"), None, None, "0 3 * * SUN", None, 30 * timedelta(minutes=1), SEED, NOW
    )
    assert result == at("2026-11-29T03:00:00") + offset


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [
        pytest.param(None, timedelta(0), id="none"),
        pytest.param(timedelta(0), timedelta(0), id="zero"),
        pytest.param(timedelta(milliseconds=500), timedelta(0), id="sub-second"),
        pytest.param(timedelta(seconds=-5), timedelta(0), id="negative"),
    ],
)
def test_jitter_offset_degenerate(jitter: timedelta | None, expected: timedelta) -> None:
    assert jitter_offset(SEED, jitter) == expected


def test_result_is_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = next_rotation_time(NOW.astimezone(plus_two), None, D, None, None, None, SEED, NOW)
    assert result == NOW + D
    assert result is not None
    assert result.utcoffset() == timedelta(0)


def test_cron_in_other_zone_is_evaluated_in_utc() -> None:
    """The anchor's zone does not shift the cron line: 03:00 means 03:00 UTC."""
    anchor = at("2026-11-22T03:00:00").astimezone(timezone(timedelta(hours=-5)))
    result = next_rotation_time(anchor, None, None, "0 3 * * SUN", None, None, SEED, NOW)
    assert result == at("2026-11-29T03:00:00")


def test_invalid_cron_raises() -> None:
    with pytest.raises(CronSimError):
        next_rotation_time(None, None, None, "61 * * * *", None, None, SEED, NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_rotation_time(None, None, D, None, None, None, SEED, datetime(2026, 1, 1))


_offsets = st.integers(-1000, 1000).map(lambda h: NOW + timedelta(hours=h))


@given(
    last=st.one_of(st.none(), _offsets),
    created=_offsets,
    interval=st.one_of(st.none(), st.integers(1, 5000).map(lambda h: timedelta(hours=h))),
    cron=st.one_of(st.none(), st.sampled_from(["0 3 * * SUN", "*/15 * * * *", "0 0 1 * *"])),
    max_age=st.integers(1, 5000).map(lambda h: timedelta(hours=h)),
    jitter=st.one_of(st.none(), st.integers(0, 100_000).map(lambda s: timedelta(seconds=s))),
    seed=st.text(max_size=20),
)
def test_never_later_than_max_age(
    last: datetime | None,
    created: datetime,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta,
    jitter: timedelta | None,
    seed: str,
) -> None:
    """Whatever the schedule and jitter, the credential never outlives maxAge."""
    result = next_rotation_time(last, created, interval, cron, max_age, jitter, seed, NOW)
    assert result is not None
    assert result <= created + max_age


@given(
    last=_offsets,
    interval=st.integers(1, 5000).map(lambda h: timedelta(hours=h)),
    jitter=st.integers(1, 100_000).map(lambda s: timedelta(seconds=s)),
    seed=st.text(max_size=20),
)
def test_jitter_only_delays_and_stays_within_window(
    last: datetime, interval: timedelta, jitter: timedelta, seed: str
) -> None:
    result = next_rotation_time(last, None, interval, None, None, jitter, seed, NOW)
    assert result is not None
    assert last + interval <= result < last + interval + jitter
