"""IANA time zones by name (``spec.schedule.timeZone``, ``spec.schedule.window.timeZone``).

The names come from the tz database the ``tzdata`` wheel ships (a dependency, so a slim image
without ``/usr/share/zoneinfo`` knows them too); zoneinfo prefers the system's copy when present.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

__all__ = ["load_zone"]

# Names in the zoneinfo tree that are not IANA zones: the host's own zone (a cluster has no single
# one, and CronJob refuses "Local" for the same reason) and tzcode's helper files.
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def load_zone(name: str) -> ZoneInfo:
    """An IANA zone by name (``Europe/Berlin``, ``UTC``); ``ValueError`` naming it otherwise.

    Checked against the tz database's list rather than by trying ``ZoneInfo(name)`` alone, which
    would also open ``localtime`` or a path such as ``../../etc/passwd``-shaped names.
    """
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as Europe/Berlin or UTC")
    return ZoneInfo(name)
