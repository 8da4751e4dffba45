"""Maintenance windows: when scheduled and maxAge rotations may start.

A window is a daily span of wall-clock time (``start``-``end``, in a time zone) on some days of
the week. ``end`` before ``start`` means the span runs past midnight into the next day; the
day named is the day the window *opens* (``Fri 22:00-02:00`` closes on Saturday at 02:00).

Pure and clock-free: every question takes the instant it is about. Instants are compared in UTC
only, because two aware datetimes sharing one ``ZoneInfo`` compare by wall clock and would get a
DST fold wrong. A wall-clock time that does not exist on a spring-forward day opens an hour later
(``zoneinfo``'s fold=0 reading, as cron implementations do); one that exists twice opens at the
first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from rotator.models.spec import ScheduleSpec
from rotator.models.zones import load_zone

__all__ = ["DAY_NAMES", "Window", "schedule_zone", "window_of"]

#: ``schedule.window.days`` values, in ``date.weekday()`` order.
DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# A week holds every weekday once; one more day on each side covers a span past midnight.
_SEARCH_DAYS: Final = 9


@dataclass(frozen=True, slots=True)
class Window:
    """Days of the week (``date.weekday()`` numbers) and a wall-clock span in ``zone``."""

    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise ValueError("a window needs at least one day of the week (0-6)")
        if self.start == self.end:
            raise ValueError("a window's start and end must differ")

    @property
    def length(self) -> timedelta:
        """The nominal span (a DST change makes one day's window an hour longer or shorter)."""
        minutes = (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)
        return timedelta(minutes=minutes % (24 * 60))

    def describe(self) -> str:
        """``Mon,Tue 02:00-04:00 Europe/Berlin``: for status messages and ``rotator plan``."""
        days = ",".join(name for number, name in enumerate(DAY_NAMES) if number in self.days)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"

    def _spans(self, around: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(opening, closing) in UTC for windows opening from the day before ``around``'s local
        day on, in order."""
        first = around.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            if day.weekday() in self.days:
                yield self._span(day)

    def _span(self, day: date) -> tuple[datetime, datetime]:
        closing_day = day if self.end > self.start else day + timedelta(days=1)
        opening = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        closing = datetime.combine(closing_day, self.end, tzinfo=self.zone).astimezone(UTC)
        return opening, closing

    def contains(self, moment: datetime) -> bool:
        """Is the window open at ``moment`` (opening included, closing excluded)?"""
        instant = moment.astimezone(UTC)
        return any(opening <= instant < closing for opening, closing in self._spans(instant))

    def next_opening(self, moment: datetime) -> datetime:
        """The first opening at or after ``moment`` (UTC)."""
        instant = moment.astimezone(UTC)
        return next(opening for opening, _ in self._spans(instant) if opening >= instant)

    def open_from(self, moment: datetime) -> datetime:
        """``moment`` if the window is open then, else the next opening."""
        return moment.astimezone(UTC) if self.contains(moment) else self.next_opening(moment)

    def last_opening(self, moment: datetime) -> datetime:
        """The latest opening at or before ``moment`` (UTC)."""
        instant = moment.astimezone(UTC)
        first = instant.astimezone(self.zone).date() - timedelta(days=_SEARCH_DAYS - 1)
        openings = [
            self._span(day)[0]
            for day in (first + timedelta(days=n) for n in range(_SEARCH_DAYS + 1))
            if day.weekday() in self.days
        ]
        return max(opening for opening in openings if opening <= instant)


def schedule_zone(schedule: ScheduleSpec) -> ZoneInfo:
    """The zone cron is read in: ``schedule.timeZone``, else UTC."""
    return load_zone(schedule.time_zone or "UTC")


def window_of(schedule: ScheduleSpec) -> Window | None:
    """The spec's window as a :class:`Window` (its zone: its own, else the schedule's, else UTC)."""
    spec = schedule.window
    if spec is None:
        return None
    return Window(
        days=frozenset(DAY_NAMES.index(str(day)) for day in spec.days),
        start=time.fromisoformat(spec.start),
        end=time.fromisoformat(spec.end),
        zone=load_zone(spec.time_zone or schedule.time_zone or "UTC"),
    )
