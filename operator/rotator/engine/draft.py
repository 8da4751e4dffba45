"""One reconcile's working copy of a policy's status, the Events it will post, and the write.

Every reconciler reads and changes status through the typed models (``RotationPolicyStatus``),
so the CRD, the models and the code share one schema and one time format. The write is a JSON
merge patch of exactly what changed between the status as read and as left (fields the models
do not know are left alone: an older operator must not erase what a newer one wrote), and no
request at all when nothing changed.

The write carries the ``resourceVersion`` of the object the reconcile read (optimistic
concurrency): if anyone wrote the policy since (another replica that still believes it leads, a
human, Kopf's own annotations), the API answers 409 and this reconcile's decision is dropped
whole, status and Events, to be made again from a fresh read (:class:`StatusConflict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotator.kube import Kube, KubeConflict
from rotator.models import (
    ConditionType,
    Event,
    PolicyRef,
    RotationPolicyStatus,
    RotationState,
    set_condition,
)


@dataclass
class Draft:
    ref: PolicyRef
    generation: int
    annotations: Mapping[str, str]
    before: RotationPolicyStatus
    now: datetime
    #: metadata.resourceVersion of the object this reconcile read; the status write is
    #: conditional on it. Empty only for objects that were never read from the API.
    resource_version: str = ""
    status: RotationPolicyStatus = field(init=False)
    events: list[Event] = field(default_factory=list)
    #: The policy as the status write left it (the API's answer), None until one is made.
    written: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.status = self.before

    @property
    def labels(self) -> dict[str, str]:
        """The per-policy metric labels."""
        return {"namespace": self.ref.namespace, "policy": self.ref.name}

    @property
    def rotation(self) -> RotationState:
        assert self.status.rotation is not None, "only the rotating reconcilers ask"
        return self.status.rotation

    def set(self, **fields: Any) -> None:
        """Set status fields by their Python names (values already of the model's types)."""
        self.status = self.status.model_copy(update=fields)

    def set_rotation(self, **fields: Any) -> None:
        self.set(rotation=self.rotation.model_copy(update=fields))

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(reason, message, warning))

    def condition(
        self,
        kind: ConditionType,
        status: bool,
        reason: str,
        message: str,
        *,
        event_on_change: bool = False,
    ) -> None:
        """Set a condition; with ``event_on_change``, post an Event when reason or message moved."""
        before = self.status.condition(kind)
        self.set(
            conditions=set_condition(
                self.status.conditions, kind, status, reason, message, self.now, self.generation
            )
        )
        changed = before is None or before.reason != reason or before.message != message
        if event_on_change and changed:
            bad = (kind is ConditionType.READY and not status) or (kind is ConditionType.DEGRADED and status)
            self.event(reason, message, warning=bad)


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: the patch that turns ``before`` into ``after`` (null removes; lists replace)."""
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif key not in before or old != value:
            patch[key] = value
    return patch


class StatusConflict(Exception):
    """The status write met a newer resourceVersion: what this reconcile decided rests on a stale
    read. Nothing of it is kept (side effects already done are idempotent by rotation id, as after
    a crash); the policy is observed again."""

    def __init__(self, before: RotationPolicyStatus) -> None:
        super().__init__("the policy changed since it was read")
        self.before = before


@dataclass
class Reconciled:
    """What one reconcile did: when to look again, the Events to post, the status it left."""

    requeue_after: float | None
    events: list[Event]
    status: RotationPolicyStatus
    #: The reconcile ended on a temporary failure (store or API unreachable): the caller counts
    #: these in a row and passes the count back, so idle policies back off too.
    temporary: bool = False
    #: The policy object as this reconcile's status write left it (the API's answer to the
    #: patch): the next reconcile can start from it instead of reading the policy again. None
    #: when nothing was written, or when the write met a conflict (then read afresh).
    written: dict[str, Any] | None = None
    #: The object read was stale (the write met a conflict): read it afresh before the next look.
    stale: bool = False


def persist(kube: Kube, draft: Draft, requeue_after: float | None, *, temporary: bool = False) -> Reconciled:
    """Write what changed (nothing when nothing did) and report the reconcile.

    A reconcile that did not end temporarily ends the streak of failures (``failingSince``)."""
    if not temporary and draft.status.failing_since is not None:
        draft.set(failing_since=None)
    # Through the wire format and back: what the caller sees is exactly what was stored (whole
    # seconds where status keeps whole seconds), so the next reconcile computes the same times.
    # The round trip is exact the second time (tests/engine/test_draft.py), so ``wire`` is also
    # what the new status dumps to: the patch is taken from it rather than from a second dump.
    wire = draft.status.model_copy(update={"observed_generation": draft.generation}).to_patch()
    draft.status = RotationPolicyStatus.from_raw(wire)
    patch = merge_patch(draft.before.to_patch(), wire)
    if patch:
        write_status(kube, draft, patch)
    return Reconciled(requeue_after, draft.events, draft.status, temporary, draft.written)


def write_status(kube: Kube, draft: Draft, patch: dict[str, Any]) -> None:
    """The one status write: conditional on the resourceVersion read, a conflict as StatusConflict."""
    try:
        draft.written = kube.patch_policy_status(
            draft.ref.namespace, draft.ref.name, patch, resource_version=draft.resource_version or None
        )
    except KubeConflict:
        raise StatusConflict(draft.before) from None
