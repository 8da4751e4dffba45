"""Go-style durations and 5-field cron lines, parsed by maintained libraries.

The CRD restricts both with the same patterns (checked by tests/unit/test_crd_table.py), so
whatever kube-apiserver admits these parsers understand; cronsim additionally catches lines the
pattern cannot (``0 0 31 2 *`` never fires).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import durationpy
from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, StringConstraints

GO_DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
CRON_PATTERN: Final = r"^[0-9A-Za-z*,/#-]+( +[0-9A-Za-z*,/#-]+){4}$"
DURATION_MAX_LENGTH: Final = 64
CRON_MAX_LENGTH: Final = 128

_DURATION_RE = re.compile(GO_DURATION_PATTERN)
_CRON_RE = re.compile(CRON_PATTERN)


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(minutes=90)``. Signs and bare numbers are refused (Go allows
    ``-1h`` and ``0``; a policy never means either)."""
    if not _DURATION_RE.match(text):
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
