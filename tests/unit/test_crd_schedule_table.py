"""The CRD and the models agree on the schedule's time zone and maintenance window (the same
contract as test_crd_table.py, whose helpers this reuses: both accept, or both reject naming the
same ``spec.…`` field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotator.models import InvalidSpecError, parse_spec
from rotator.models import spec as spec_mod
from rotator.sandbox.schema_validation import prune, validate
from tests.unit.test_crd_table import SCHEMA, Obj, V, _schema_at, crd_admit, edit, model_field


def schedule(**fields: Any) -> Callable[[], Obj]:
    return edit(V, lambda s: s.update(schedule=fields))


NIGHTLY = {"start": "02:00", "end": "04:00"}

GOOD = [
    pytest.param(schedule(cron="0 3 * * *", timeZone="Europe/Berlin"), id="cron-in-berlin"),
    pytest.param(schedule(interval="24h", timeZone="America/Argentina/Buenos_Aires"), id="three-part-zone"),
    pytest.param(schedule(interval="24h", timeZone="Etc/GMT+5"), id="etc-offset-zone"),
    pytest.param(schedule(interval="24h", window=NIGHTLY), id="window-every-day-utc"),
    pytest.param(
        schedule(
            maxAge="720h",
            window={"days": ["Sat", "Sun"], "start": "22:00", "end": "02:00", "timeZone": "Asia/Tokyo"},
        ),
        id="overnight-weekend-window",
    ),
    pytest.param(
        schedule(
            cron="0 3 * * *", timeZone="Europe/Berlin", jitter="1h", window={**NIGHTLY, "days": ["Mon"]}
        ),
        id="everything",
    ),
]

BAD = [
    pytest.param(schedule(timeZone="Europe/Berlin/../../x"), "spec.schedule.timeZone", id="zone-dot-dot"),
    pytest.param(schedule(timeZone="/etc/localtime"), "spec.schedule.timeZone", id="zone-absolute-path"),
    pytest.param(schedule(timeZone="E" * 65), "spec.schedule.timeZone", id="zone-too-long"),
    pytest.param(
        schedule(window={"start": "2:00", "end": "04:00"}), "spec.schedule.window.start", id="start-h"
    ),
    pytest.param(
        schedule(window={"start": "02:00", "end": "24:00"}), "spec.schedule.window.end", id="end-24"
    ),
    pytest.param(schedule(window={"start": "02:00"}), "spec.schedule.window.end", id="end-missing"),
    pytest.param(
        schedule(window={"start": "02:00", "end": "02:00"}), "spec.schedule.window", id="empty-window"
    ),
    pytest.param(schedule(window={**NIGHTLY, "days": []}), "spec.schedule.window.days", id="no-days"),
    pytest.param(
        schedule(window={**NIGHTLY, "days": ["Monday"]}), "spec.schedule.window.days[0]", id="day-name"
    ),
    pytest.param(
        schedule(window={**NIGHTLY, "days": ["Mon", "Mon"]}), "spec.schedule.window.days[1]", id="dup-day"
    ),
    pytest.param(
        schedule(window={**NIGHTLY, "timeZone": "not a zone"}),
        "spec.schedule.window.timeZone",
        id="window-zone",
    ),
]


@pytest.mark.parametrize("build", GOOD)
def test_both_accept(build: Callable[[], Obj]) -> None:
    obj = build()
    stored, crd_errors = crd_admit(obj)
    assert crd_errors == []
    pruned_spec = prune(SCHEMA, obj)["spec"]
    assert model_field(pruned_spec) is None
    assert parse_spec(stored["spec"]) == parse_spec(pruned_spec)  # same defaults (days: every day)


@pytest.mark.parametrize(("build", "field"), BAD)
def test_both_reject_naming_the_field(build: Callable[[], Obj], field: str) -> None:
    obj = build()
    _, crd_errors = crd_admit(obj)
    assert field in crd_errors, crd_errors
    assert model_field(prune(SCHEMA, obj)["spec"]) == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval": "24h", "timeZone": "Mars/Olympus_Mons"}, "spec.schedule.timeZone"),
        ({"interval": "24h", "timeZone": "localtime"}, "spec.schedule.timeZone"),
        (
            {"interval": "24h", "window": {**NIGHTLY, "timeZone": "Europe/Atlantis"}},
            "spec.schedule.window.timeZone",
        ),
    ],
)
def test_zone_the_pattern_cannot_judge_is_caught_by_the_models(fields: dict[str, Any], field: str) -> None:
    """Like a cron line that never fires: the name has the shape of a zone, the tz database does
    not know it. The operator then reports Ready=False/InvalidSpec naming the field."""
    obj = schedule(**fields)()
    assert crd_admit(obj)[1] == []
    with pytest.raises(InvalidSpecError) as refused:
        parse_spec(obj["spec"])
    assert refused.value.field == field
    assert "unknown time zone" in refused.value.message


def test_empty_window_says_the_same_in_both() -> None:
    stored, _ = crd_admit(schedule(window={"start": "02:00", "end": "02:00"})())
    assert [e.detail for e in validate(SCHEMA, stored) if e.field == "spec.schedule.window"] == [
        "start and end must differ"
    ]
    with pytest.raises(InvalidSpecError, match="start and end must differ"):
        parse_spec(stored["spec"])


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("schedule.timeZone", spec_mod.TIME_ZONE_PATTERN),
        ("schedule.window.timeZone", spec_mod.TIME_ZONE_PATTERN),
        ("schedule.window.start", spec_mod.WALL_CLOCK_PATTERN),
        ("schedule.window.end", spec_mod.WALL_CLOCK_PATTERN),
    ],
)
def test_crd_patterns_are_the_models_patterns(path: str, pattern: str) -> None:
    assert _schema_at(path)["pattern"] == pattern


def test_day_names_are_the_models() -> None:
    days = _schema_at("schedule.window.days")
    assert days["items"]["enum"] == [str(d) for d in spec_mod.Weekday]
    assert days["default"] == [str(d) for d in spec_mod.ALL_DAYS]
