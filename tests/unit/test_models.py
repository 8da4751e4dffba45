"""Models: durations and cron, time helpers, spec parsing errors, status round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from rotator.models import (
    Alphabet,
    ConditionType,
    DryRunReport,
    HistoryEntry,
    InvalidSpecError,
    Phase,
    RotationPolicySpec,
    RotationPolicyStatus,
    RotationResult,
    RotationState,
    Step,
    TriggerReason,
    WorkloadKind,
    format_duration,
    format_time,
    next_cron_time,
    parse_duration,
    parse_spec,
    parse_time,
)
from rotator.models.durations import check_cron
from rotator.models.spec import DeletionPolicy, StoreRef
from rotator.models.store import StoreRefKind

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # a Friday


def spec(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "secret": {"name": "orders-db-credentials"},
        "credential": {"password": {}},
        "storeRef": {"name": "vault"},
        "path": "orders-db",
    }
    raw.update(changes)
    return raw


# --- durations and cron -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720h", timedelta(hours=720)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("250ms", timedelta(milliseconds=250)),
        ("3us", timedelta(microseconds=3)),
        ("3µs", timedelta(microseconds=3)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-1h", "+1h", "1d", "1 h", "h", "1h ", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text", ["100000h", "9999999999h", "100000000m", "1000000000000000000ns", "1.0000000001s"]
)
def test_parse_duration_refuses_more_digits_than_ten_years_need(text: str) -> None:
    with pytest.raises(ValueError, match="too many digits"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"schedule": {"maxAge": "100000000h"}},
            "spec.schedule.maxAge: invalid duration '100000000h': too many",
        ),
        ({"schedule": {"interval": "87601h"}}, "spec.schedule.interval: must be at most 87600h"),
        ({"schedule": {"interval": "59s"}}, "spec.schedule.interval: must be at least 1m"),
        ({"schedule": {"jitter": "87600h1s"}}, "spec.schedule.jitter: must be at most 87600h"),
        ({"verify": {"timeout": "24h1s"}}, "spec.verify.timeout: must be at most 24h"),
        ({"revoke": {"gracePeriod": "30d"}}, "spec.revoke.gracePeriod: invalid duration '30d': expected"),
        ({"revoke": {"gracePeriod": "720h1s"}}, "spec.revoke.gracePeriod: must be at most 720h"),
    ],
)
def test_durations_are_bounded_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as refused:
        parse_spec(spec(**changes))
    assert str(refused.value).startswith(message)


def test_the_largest_admitted_durations_fit_datetime_arithmetic() -> None:
    parsed = parse_spec(
        spec(
            schedule={"interval": "87600h", "maxAge": "87600h", "jitter": "87600h"},
            verify={"timeout": "24h"},
            revoke={"gracePeriod": "720h"},
        )
    )
    deltas = [parsed.schedule.interval_delta, parsed.schedule.max_age_delta, parsed.schedule.jitter_delta]
    latest = NOW + sum((d for d in deltas if d is not None), timedelta())
    assert latest - NOW == timedelta(hours=3 * 87600)
    latest += parsed.verify.timeout_delta + parsed.revoke.grace_period_delta
    assert latest.year == 2056
    assert format_time(latest).startswith("2056-")


@pytest.mark.parametrize("delta", [timedelta(hours=720), timedelta(minutes=90), timedelta(seconds=1.5)])
def test_format_duration_round_trips(delta: timedelta) -> None:
    assert parse_duration(format_duration(delta)) == delta


def test_next_cron_time_is_strictly_after_and_utc() -> None:
    assert next_cron_time("0 3 * * SUN", NOW) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert next_cron_time("0 20 * * *", NOW) == datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert next_cron_time("0 3 * * SUN", berlin) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr", ["0 3 * *", "@daily", "0 3 * * * *", "0 0 31 2 *", "61 * * * *", "x y z w v"]
)
def test_check_cron_refuses(expr: str) -> None:
    with pytest.raises(ValueError, match="invalid cron"):
        check_cron(expr)


# --- times --------------------------------------------------------------------------------------


def test_format_and_parse_time() -> None:
    assert format_time(NOW) == "2026-11-27T20:00:00Z"
    assert format_time(datetime(2026, 11, 27, 21, 0, 0, 999, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-11-27T20:00:00Z"
    )
    assert parse_time("2026-11-27T20:00:00Z") == NOW
    assert parse_time("2026-11-27T21:00:00+01:00") == NOW
    assert parse_time("2026-11-27T21:00:00+01:00").tzinfo == UTC


def test_time_helpers_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 11, 27))
    with pytest.raises(ValueError, match="zone"):
        parse_time("2026-11-27T20:00:00")


# --- spec ---------------------------------------------------------------------------------------


def test_spec_defaults_and_properties() -> None:
    parsed = parse_spec(spec(schedule={"interval": "720h", "maxAge": "2160h", "jitter": "1h"}))
    assert parsed.secret.key == "password"
    assert parsed.secret.previous_key is None
    assert parsed.credential.password is not None
    assert parsed.credential.password.length == 32
    assert parsed.credential.password.alphabet is Alphabet.ALPHANUMERIC
    assert parsed.store_ref == StoreRef(kind="RotationStore", name="vault")
    assert parsed.path == "orders-db"
    assert parsed.adopt is False
    assert parsed.secret.deletion_policy is DeletionPolicy.RETAIN
    assert parsed.secret.delete_with_policy is False
    assert parsed.schedule.interval_delta == timedelta(hours=720)
    assert parsed.schedule.max_age_delta == timedelta(hours=2160)
    assert parsed.schedule.jitter_delta == timedelta(hours=1)
    assert parsed.verify.timeout_delta == timedelta(minutes=10)
    assert parsed.revoke.grace_period_delta == timedelta(minutes=5)
    assert parsed.restart.targets == ()
    assert parsed.restart.max_concurrent == 5
    assert (parsed.suspend, parsed.dry_run) == (False, False)


def test_no_schedule_means_no_deltas() -> None:
    parsed = parse_spec(spec())
    assert (parsed.schedule.interval_delta, parsed.schedule.cron, parsed.schedule.max_age_delta) == (
        None,
        None,
        None,
    )


def test_cluster_store_ref_adopt_and_deletion_policy() -> None:
    parsed = parse_spec(
        spec(
            storeRef={"kind": "ClusterRotationStore", "name": "shared"},
            adopt=True,
            secret={"name": "s", "deletionPolicy": "Delete"},
        )
    )
    assert parsed.store_ref.kind == StoreRefKind.CLUSTER_ROTATION_STORE
    assert StoreRefKind(parsed.store_ref.kind) is StoreRefKind.CLUSTER_ROTATION_STORE
    assert parsed.adopt is True
    assert parsed.secret.deletion_policy is DeletionPolicy.DELETE
    assert parsed.secret.delete_with_policy is True


def test_store_ref_kinds_are_the_store_crd_kinds() -> None:
    """Every kind a policy may name is a StoreRefKind (rotator.tenancy resolves it), and back."""
    for kind in StoreRefKind:
        assert parse_spec(spec(storeRef={"kind": str(kind), "name": "s"})).store_ref.kind == kind
    assert {str(k) for k in StoreRefKind} == {"RotationStore", "ClusterRotationStore"}


def test_snake_case_names_also_populate() -> None:
    model = RotationPolicySpec.model_validate(spec(dry_run=True))
    assert model.dry_run is True


def test_spec_is_frozen() -> None:
    parsed = parse_spec(spec())
    with pytest.raises(ValidationError):
        parsed.suspend = True


def test_dump_uses_camel_case_and_parses_back() -> None:
    parsed = parse_spec(spec(restart={"targets": [{"kind": "Deployment", "name": "api"}]}))
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["restart"] == {
        "targets": [{"kind": "Deployment", "name": "api"}],
        "auto": False,
        "maxConcurrent": 5,
    }
    assert dumped["dryRun"] is False
    assert parse_spec(dumped) == parsed
    assert parsed.restart.targets[0].kind is WorkloadKind.DEPLOYMENT


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {k: v for k, v in spec().items() if k != "storeRef"},
            "spec.storeRef: field required",
        ),
        (
            spec(store={"vault": {"address": "http://v:8200", "auth": {"kubernetes": {"role": "r"}}}}),
            "spec.store: field not declared in schema",
        ),
        (spec(storeRef={"kind": "RotationStore"}), "spec.storeRef.name: field required"),
        (
            spec(storeRef={"kind": "SecretStore", "name": "v"}),
            "spec.storeRef.kind: string should match pattern",
        ),
        (spec(path="/abs"), "spec.path: string should match pattern"),
        (spec(adopt="yes"), "spec.adopt: input should be a valid boolean"),
        (
            spec(secret={"name": "s", "deletionPolicy": "Orphan"}),
            "spec.secret.deletionPolicy: input should be 'Retain' or 'Delete'",
        ),
        (spec(extra=1), "spec.extra: field not declared in schema"),
        (
            spec(schedule={"interval": "3d"}),
            "spec.schedule.interval: invalid duration '3d': expected a Go duration",
        ),
        (
            spec(
                restart={
                    "targets": [{"kind": "Deployment", "name": "a"}, {"kind": "Deployment", "name": "a"}]
                }
            ),
            "spec.restart.targets[1]: duplicate value Deployment/a",
        ),
        ([], "spec: input should be a valid dictionary"),
    ],
)
def test_invalid_spec_names_the_field(raw: Any, message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(raw)
    assert str(caught.value).startswith(message)
    assert str(caught.value).startswith(caught.value.field + ": ")


def test_nulls_mean_default_as_on_a_cluster() -> None:
    assert parse_spec(spec(secret={"name": "s", "key": None}, schedule=None)).secret.key == "password"


# --- status -------------------------------------------------------------------------------------


def test_status_round_trip_and_enums() -> None:
    status = RotationPolicyStatus(
        phase=Phase.ROTATING,
        current_version="7",
        last_rotation_time=NOW,
        rotation=RotationState(
            id="r1", step=Step.VERIFY, reason=TriggerReason.DUE, started_at=NOW, attempt=2
        ),
        history=(HistoryEntry(id="r0", result=RotationResult.SUCCEEDED, finished_at=NOW, version="7"),),
        last_dry_run=DryRunReport(at=NOW, would_rotate=False, reason="NotDue"),
    )
    patch = status.to_patch()
    assert patch == {
        "phase": "Rotating",
        "currentVersion": "7",
        "lastRotationTime": "2026-11-27T20:00:00Z",
        "rotation": {
            "id": "r1",
            "step": "verify",
            "reason": "Due",
            "startedAt": "2026-11-27T20:00:00Z",
            "attempt": 2,
            "restartedTargets": [],
        },
        "conditions": [],
        "history": [
            {"id": "r0", "result": "Succeeded", "finishedAt": "2026-11-27T20:00:00Z", "version": "7"}
        ],
        "lastDryRun": {"at": "2026-11-27T20:00:00Z", "wouldRotate": False, "reason": "NotDue", "message": ""},
    }
    assert RotationPolicyStatus.from_raw(patch) == status


def test_status_from_raw_tolerates_empty_and_unknown_fields() -> None:
    assert RotationPolicyStatus.from_raw(None) == RotationPolicyStatus()
    assert RotationPolicyStatus.from_raw({"phase": "Idle", "fromTheFuture": 1}).phase is Phase.IDLE


def test_history_is_bounded() -> None:
    entries = [{"id": str(i), "result": "Succeeded"} for i in range(11)]
    with pytest.raises(ValidationError):
        RotationPolicyStatus.from_raw({"history": entries})


def test_condition_lookup() -> None:
    status = RotationPolicyStatus.from_raw(
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "lastTransitionTime": "2026-11-27T20:00:00Z",
                }
            ]
        }
    )
    ready = status.condition(ConditionType.READY)
    assert ready is not None
    assert ready.last_transition_time == NOW
    assert status.condition(ConditionType.DEGRADED) is None
