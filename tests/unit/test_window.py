"""Maintenance windows, time zones and jitter: a table per question, with a fixed clock.

NOW is Friday 2026-11-27 20:00 UTC (21:00 in Berlin, CET = UTC+1). Berlin switches to summer
time on 2026-03-29 (02:00 -> 03:00) and back on 2026-10-25 (03:00 -> 02:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.models import parse_spec
from rotator.models.zones import load_zone
from rotator.policy.schedule import jitter_offset, outlook
from rotator.policy.window import Window, schedule_zone, window_of

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)  # a Friday
H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)
SEED = "shop/orders-db"
BERLIN = load_zone("Europe/Berlin")
WEEKDAYS = frozenset(range(5))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(start: str, end: str, days: frozenset[int] = frozenset(range(7)), zone: str = "UTC") -> Window:
    return Window(
        days=days, start=time.fromisoformat(start), end=time.fromisoformat(end), zone=load_zone(zone)
    )


NIGHTLY_BERLIN = window("02:00", "04:00", WEEKDAYS, "Europe/Berlin")  # 01:00-03:00 UTC in winter
OVERNIGHT = window("22:00", "02:00", frozenset({4}))  # Friday night into Saturday, UTC


@pytest.mark.parametrize(
    ("win", "moment", "open_"),
    [
        pytest.param(NIGHTLY_BERLIN, at("2026-11-27T01:00:00"), True, id="opening-included"),
        pytest.param(NIGHTLY_BERLIN, at("2026-11-27T02:59:59"), True, id="inside"),
        pytest.param(NIGHTLY_BERLIN, at("2026-11-27T03:00:00"), False, id="closing-excluded"),
        pytest.param(NIGHTLY_BERLIN, at("2026-11-28T01:30:00"), False, id="saturday-not-a-day"),
        pytest.param(NIGHTLY_BERLIN, at("2026-07-01T00:30:00"), True, id="summer-time-02:30-is-00:30-utc"),
        pytest.param(NIGHTLY_BERLIN, at("2026-07-01T02:30:00"), False, id="summer-time-04:30-local"),
        pytest.param(OVERNIGHT, at("2026-11-27T23:00:00"), True, id="overnight-friday"),
        pytest.param(OVERNIGHT, at("2026-11-28T01:59:00"), True, id="overnight-past-midnight"),
        pytest.param(OVERNIGHT, at("2026-11-28T22:30:00"), False, id="overnight-opens-friday-only"),
        pytest.param(OVERNIGHT, at("2026-11-27T02:00:00"), False, id="overnight-thursday-night-closed"),
    ],
)
def test_contains(win: Window, moment: datetime, open_: bool) -> None:
    assert win.contains(moment) is open_


@pytest.mark.parametrize(
    ("win", "moment", "expected"),
    [
        pytest.param(NIGHTLY_BERLIN, NOW, at("2026-11-30T01:00:00"), id="friday-evening-to-monday"),
        pytest.param(NIGHTLY_BERLIN, at("2026-11-27T01:00:00"), at("2026-11-27T01:00:00"), id="at-opening"),
        pytest.param(OVERNIGHT, NOW, at("2026-11-27T22:00:00"), id="tonight"),
        pytest.param(OVERNIGHT, at("2026-11-27T22:00:01"), at("2026-12-04T22:00:00"), id="next-week"),
        pytest.param(
            window("02:30", "03:30", zone="Europe/Berlin"),
            at("2026-03-28T12:00:00"),
            at("2026-03-29T01:30:00"),  # 02:30 does not exist that night: 03:30 CEST
            id="spring-forward-gap-opens-an-hour-later",
        ),
        pytest.param(
            window("02:30", "03:30", zone="Europe/Berlin"),
            at("2026-10-24T12:00:00"),
            at("2026-10-25T00:30:00"),  # 02:30 happens twice: the first (CEST)
            id="fall-back-opens-at-the-first",
        ),
    ],
)
def test_next_opening(win: Window, moment: datetime, expected: datetime) -> None:
    assert win.next_opening(moment) == expected
    assert win.open_from(moment) >= moment


@pytest.mark.parametrize(
    ("win", "moment", "expected"),
    [
        pytest.param(NIGHTLY_BERLIN, NOW, at("2026-11-27T01:00:00"), id="this-morning"),
        pytest.param(NIGHTLY_BERLIN, at("2026-11-30T00:59:59"), at("2026-11-27T01:00:00"), id="over-weekend"),
        pytest.param(OVERNIGHT, at("2026-11-27T21:00:00"), at("2026-11-20T22:00:00"), id="a-week-back"),
        pytest.param(OVERNIGHT, at("2026-11-27T22:00:00"), at("2026-11-27T22:00:00"), id="at-opening"),
    ],
)
def test_last_opening(win: Window, moment: datetime, expected: datetime) -> None:
    assert win.last_opening(moment) == expected


def test_window_length_and_description() -> None:
    assert NIGHTLY_BERLIN.length == 2 * H
    assert OVERNIGHT.length == 4 * H
    assert NIGHTLY_BERLIN.describe() == "Mon,Tue,Wed,Thu,Fri 02:00-04:00 Europe/Berlin"


@pytest.mark.parametrize(
    ("days", "start", "end"),
    [(frozenset(), "01:00", "02:00"), (frozenset({7}), "01:00", "02:00"), (WEEKDAYS, "01:00", "01:00")],
)
def test_degenerate_windows_are_refused(days: frozenset[int], start: str, end: str) -> None:
    with pytest.raises(ValueError, match="window"):
        window(start, end, days)


# --- the schedule through a window ----------------------------------------------------------------

CASES = [
    # last rotation, interval, cron, maxAge, window, expected (scheduled, maxAge deadline)
    pytest.param(
        at("2026-11-26T01:30:00"),
        4 * D,
        None,
        None,
        NIGHTLY_BERLIN,
        (at("2026-11-30T01:30:00"), None),
        id="interval-inside-window-unchanged",
    ),
    pytest.param(
        at("2026-11-26T12:00:00"),
        2 * D,
        None,
        None,
        NIGHTLY_BERLIN,
        (at("2026-11-30T01:00:00"), None),
        id="interval-outside-waits-for-monday-opening",
    ),
    pytest.param(
        at("2026-11-25T12:00:00"),
        D,
        None,
        None,
        NIGHTLY_BERLIN,
        (at("2026-11-30T01:00:00"), None),
        id="missed-while-closed-waits-for-next-opening",
    ),
    pytest.param(
        at("2026-11-24T03:00:00"),
        None,
        "30 2 * * MON",
        None,
        NIGHTLY_BERLIN,
        (at("2026-11-30T01:30:00"), None),
        id="cron-in-berlin-inside-window",
    ),
    pytest.param(
        at("2026-11-26T01:00:00"),
        None,
        None,
        5 * D,
        NIGHTLY_BERLIN,
        (None, at("2026-12-01T01:00:00")),
        id="expiry-inside-window-unchanged",
    ),
    pytest.param(
        at("2026-11-26T01:00:00"),
        None,
        None,
        2 * D + 12 * H,
        NIGHTLY_BERLIN,
        (None, at("2026-11-27T01:00:00")),
        id="expiry-saturday-noon-brought-forward-to-friday",
    ),
    pytest.param(
        at("2026-11-27T01:30:00"),
        None,
        None,
        23 * H,
        NIGHTLY_BERLIN,
        (None, at("2026-11-28T00:30:00")),
        id="no-window-in-the-credentials-life-ceiling-wins",
    ),
    pytest.param(
        at("2026-11-26T01:00:00"),
        3 * D,
        None,
        3 * D + 12 * H,
        NIGHTLY_BERLIN,
        (at("2026-11-30T01:00:00"), at("2026-11-27T01:00:00")),
        id="earlier-wins-in-next",
    ),
]


@pytest.mark.parametrize(("last", "interval", "cron", "max_age", "win", "expected"), CASES)
def test_outlook_through_a_window(
    last: datetime,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta | None,
    win: Window,
    expected: tuple[datetime | None, datetime | None],
) -> None:
    result = outlook(last, last, interval, cron, max_age, None, SEED, NOW, time_zone=BERLIN, window=win)
    assert (result.scheduled, result.max_age_deadline) == expected
    assert result.next == min(t for t in expected if t is not None)


def test_cron_reads_its_time_zone_across_dst() -> None:
    """ "0 3 * * *" in Berlin is 02:00 UTC in winter and 01:00 UTC in summer; without a zone, UTC."""
    winter = outlook(
        at("2026-11-27T00:00:00"), None, None, "0 3 * * *", None, None, SEED, NOW, time_zone=BERLIN
    )
    summer = outlook(
        at("2026-07-01T00:00:00"), None, None, "0 3 * * *", None, None, SEED, NOW, time_zone=BERLIN
    )
    utc = outlook(at("2026-07-01T00:00:00"), None, None, "0 3 * * *", None, None, SEED, NOW)
    assert (winter.scheduled, summer.scheduled, utc.scheduled) == (
        at("2026-11-27T02:00:00"),
        at("2026-07-01T01:00:00"),
        at("2026-07-01T03:00:00"),
    )


def test_jitter_spreads_policies_pushed_to_one_opening_inside_the_window() -> None:
    """200 policies on one cron line due outside the window: each lands at the opening plus its
    own offset, all inside the window, spread over it, and the same on every evaluation."""
    last = at("2026-11-20T12:00:00")
    seeds = [f"team-{i}/db" for i in range(200)]

    def due(seed: str, now: datetime) -> datetime:
        result = outlook(
            last, last, None, "0 12 * * FRI", None, 6 * H, seed, now, window=NIGHTLY_BERLIN
        ).scheduled
        assert result is not None
        return result

    times = [due(seed, NOW) for seed in seeds]
    assert times == [due(seed, NOW + 3 * H) for seed in seeds]  # stable: a restart moves nothing
    opening = at("2026-11-30T01:00:00")
    assert all(opening <= t < opening + 2 * H for t in times)  # bounded by the window, not 6h
    assert len({t.replace(second=0) for t in times}) > 60  # spread over the two hours
    assert times[0] == opening + jitter_offset(seeds[0], 2 * H)


def test_jitter_spreads_max_age_brought_forward() -> None:
    last = at("2026-11-26T01:00:00")
    deadlines = {
        outlook(
            last, last, None, None, 2 * D + 12 * H, 30 * M, f"ns/p{i}", NOW, window=NIGHTLY_BERLIN
        ).max_age_deadline
        for i in range(50)
    }
    assert len(deadlines) > 10
    assert all(
        d is not None and at("2026-11-27T01:00:00") <= d < at("2026-11-27T01:30:00") for d in deadlines
    )


@given(
    last=st.integers(-2000, 2000).map(lambda h: NOW + timedelta(hours=h)),
    max_age=st.integers(1, 2000).map(lambda h: timedelta(hours=h)),
    jitter=st.one_of(st.none(), st.integers(0, 100_000).map(lambda s: timedelta(seconds=s))),
    start=st.integers(0, 23),
    length=st.integers(1, 23),
    days=st.frozensets(st.integers(0, 6), min_size=1),
)
def test_windowed_max_age_never_outlives_the_ceiling_and_lands_inside_or_at_expiry(
    last: datetime,
    max_age: timedelta,
    jitter: timedelta | None,
    start: int,
    length: int,
    days: frozenset[int],
) -> None:
    win = window(f"{start:02d}:00", f"{(start + length) % 24:02d}:00", days, "Europe/Berlin")
    result = outlook(last, last, None, None, max_age, jitter, SEED, NOW, window=win)
    assert result.max_age_deadline is not None
    assert last < result.max_age_deadline <= last + max_age
    assert win.contains(result.max_age_deadline) or result.max_age_deadline == last + max_age


@given(
    last=st.integers(-2000, 2000).map(lambda h: NOW + timedelta(hours=h)),
    interval=st.integers(1, 2000).map(lambda h: timedelta(hours=h)),
    jitter=st.one_of(st.none(), st.integers(0, 100_000).map(lambda s: timedelta(seconds=s))),
    start=st.integers(0, 23),
    length=st.integers(1, 23),
    days=st.frozensets(st.integers(0, 6), min_size=1),
)
def test_windowed_schedule_is_always_inside_the_window(
    last: datetime,
    interval: timedelta,
    jitter: timedelta | None,
    start: int,
    length: int,
    days: frozenset[int],
) -> None:
    win = window(f"{start:02d}:00", f"{(start + length) % 24:02d}:00", days, "Europe/Berlin")
    result = outlook(last, last, interval, None, None, jitter, SEED, NOW, window=win)
    assert result.scheduled is not None
    assert win.contains(result.scheduled)
    assert result.scheduled >= last + interval or win.contains(NOW)


def test_spec_to_window_and_zones() -> None:
    spec = parse_spec(
        {
            "secret": {"name": "s"},
            "credential": {"password": {}},
            "storeRef": {"name": "v"},
            "path": "p",
            "schedule": {
                "cron": "0 3 * * *",
                "timeZone": "Europe/Berlin",
                "window": {"start": "02:00", "end": "04:00", "days": ["Sat", "Sun"]},
            },
        }
    )
    win = window_of(spec.schedule)
    assert win is not None
    assert (win.days, win.zone.key, win.length) == (frozenset({5, 6}), "Europe/Berlin", 2 * H)
    assert schedule_zone(spec.schedule).key == "Europe/Berlin"
    own = spec.schedule.model_copy(
        update={"window": spec.schedule.window.model_copy(update={"time_zone": "Asia/Tokyo"})}
    )  # type: ignore[union-attr]
    assert window_of(own).zone.key == "Asia/Tokyo"  # type: ignore[union-attr]
    assert window_of(spec.schedule.model_copy(update={"window": None})) is None


@pytest.mark.parametrize("name", ["Mars/Olympus", "localtime", "posixrules", "Europe/berlin"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        load_zone(name)
