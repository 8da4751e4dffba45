"""Go-style durations and 5-field cron lines, parsed by maintained libraries.

The CRD restricts both with the same patterns (checked by tests/unit/test_crd_table.py), so
whatever kube-apiserver admits these parsers understand; cronsim additionally catches lines the
pattern cannot (``0 0 31 2 *`` never fires).

Durations are bounded twice, because Go's grammar is not:

- **The pattern bounds the digits.** Each number has at most as many digits as 87600h (ten years)
  needs in its unit: 5 before ``h``, 7 before ``m``, 9 before ``s``, 12 before ``ms``, 15 before
  ``us``/``µs``, 18 before ``ns``, and at most 9 after a decimal point. With the 64-character
  limit no matching string can reach Go's int64-nanosecond limit (2562047h): the largest is about
  1.8 million hours (tests/unit/test_crd_table.py computes it). So the CEL ``duration()`` in the
  CRD's rules never overflows, and neither does Python's datetime arithmetic: a value that does
  not match is refused by the pattern, naming the field, before any rule converts it.
- **Each field has a maximum** (:func:`bounded`), in the CRD as a CEL rule on the field itself,
  so the 422 names the field; the maxima are documented on the fields in spec.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import durationpy
from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

_FRACTION: Final = r"([.][0-9]{1,9})?"
GO_DURATION_PATTERN: Final = (
    rf"^([0-9]{{1,5}}{_FRACTION}h|[0-9]{{1,7}}{_FRACTION}m|[0-9]{{1,9}}{_FRACTION}s"
    rf"|[0-9]{{1,12}}{_FRACTION}ms|[0-9]{{1,15}}{_FRACTION}(us|µs)|[0-9]{{1,18}}{_FRACTION}ns)+$"
)
# Go's own grammar (unsigned): only used to tell "too many digits" from "not a duration".
_UNBOUNDED_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
CRON_PATTERN: Final = r"^[0-9A-Za-z*,/#-]+( +[0-9A-Za-z*,/#-]+){4}$"
DURATION_MAX_LENGTH: Final = 64
CRON_MAX_LENGTH: Final = 128
# Go's time.Duration is int64 nanoseconds: the longest duration CEL's duration() can hold.
GO_MAX_DURATION: Final = timedelta(microseconds=(2**63 - 1) // 1000)
TEN_YEARS: Final = timedelta(hours=87600)

_DURATION_RE = re.compile(GO_DURATION_PATTERN)
_UNBOUNDED_RE = re.compile(_UNBOUNDED_PATTERN)
_CRON_RE = re.compile(CRON_PATTERN)


# A policy's few durations are parsed on every reconcile (its spec validated, its schedule read):
# the same handful of strings, and a timedelta is immutable.
@functools.lru_cache(maxsize=256)
def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(minutes=90)``. Signs and bare numbers are refused (Go allows
    ``-1h`` and ``0``; a policy never means either), and so are numbers with more digits than the
    pattern allows (see the module docstring), so the result is never near an overflow."""
    if not _DURATION_RE.match(text):
        if _UNBOUNDED_RE.match(text):
            raise ValueError(
                f"invalid duration {text!r}: too many digits (at most 5 before h, 7 before m, "
                "9 before s, 12 before ms, 15 before us, 18 before ns, 9 after a decimal point)"
            )
        raise ValueError(f"invalid duration {text!r}: expected a Go duration such as 720h or 1h30m")
    try:
        return durationpy.from_str(text)
    except durationpy.DurationError as exc:
        raise ValueError(f"invalid duration {text!r}: {exc}") from exc


def format_duration(delta: timedelta) -> str:
    """``timedelta(minutes=90)`` -> ``"1h30m"`` (Go's spelling, accepted back by the CRD)."""
    return str(durationpy.to_str(delta))


def check_duration(text: str) -> str:
    """Pydantic validator: keep the user's spelling, reject what the parser rejects."""
    parse_duration(text)
    return text


def duration_within(maximum: timedelta, minimum: timedelta | None = None) -> Callable[[str], str]:
    """Pydantic validator for a :data:`GoDuration` field admitting ``minimum <= value <= maximum``.

    The CRD holds the same bounds as CEL rules on the field itself
    (``!self.matches(pattern) || duration(self) <= duration('87600h')``) with the same messages,
    so both name the field."""

    def check(text: str) -> str:
        value = parse_duration(text)
        if minimum is not None and value < minimum:
            raise PydanticCustomError("duration_min", f"must be at least {format_duration(minimum)}")
        if value > maximum:
            raise PydanticCustomError("duration_max", f"must be at most {format_duration(maximum)}")
        return text

    return check


def check_cron(expr: str) -> str:
    """Pydantic validator: 5 fields (CRD pattern) that cronsim can schedule."""
    if not _CRON_RE.match(expr):
        raise ValueError(f"invalid cron {expr!r}: expected 5 fields such as '0 3 * * SUN'")
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"invalid cron {expr!r}: {exc}") from exc
    return expr


def next_cron_time(expr: str, after: datetime) -> datetime:
    """First time the cron line fires strictly after ``after``, evaluated in UTC."""
    return next(CronSim(expr, after.astimezone(UTC)))


GoDuration = Annotated[
    str,
    StringConstraints(strict=True, max_length=DURATION_MAX_LENGTH),
    AfterValidator(check_duration),
]
CronExpression = Annotated[
    str,
    StringConstraints(strict=True, max_length=CRON_MAX_LENGTH),
    AfterValidator(check_cron),
]
