"""Reloader-style restart decisions (pure): which patch restarts a workload, and whether it is needed.

Changing an annotation on the pod template is the one portable way to make every workload
controller roll its pods; it is also what `kubectl rollout restart` does. The annotation
carries the rotation id, so a retried or resumed rotation never restarts a target twice.

Several policies rotating together restart a shared workload once. The rule: every restart
also records, in ``rotator.dev/restarted-for``, each rotator-managed Secret the template reads
with the rotation id that had last written it when the patch was made. The pods that template
starts are created after the patch, so they read those values (or newer ones). A rotation whose
Secret is recorded there with *its own* id therefore skips the patch: another policy's restart
already came after this rotation wrote its new value. Otherwise (not recorded, or recorded with
an older writer: the workload may still run the old value) it restarts. A rotation id is used
once and the forward restart step runs before any rollback of it, so the record never vouches
for a value the pods do not have; a record that lags (a Secret written just after another
policy read it) only costs a second restart, never a skipped one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rotator.models import format_time
from rotator.models.keys import CONSUMER, CONSUMER_LABEL, RESTARTED_AT, RESTARTED_FOR, ROTATION_ID


def template_annotations(workload: Mapping[str, Any]) -> Mapping[str, str]:
    template = workload.get("spec", {}).get("template", {})
    annotations: Mapping[str, str] = template.get("metadata", {}).get("annotations") or {}
    return annotations


def restarted_for(workload: Mapping[str, Any]) -> Mapping[str, str]:
    """The template's record ``{secret name: rotation id}``; empty when absent or unreadable
    (a hand-edited annotation only loses the shortcut, it never skips a restart)."""
    raw = template_annotations(workload).get(RESTARTED_FOR)
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, str)}


def already_restarted(workload: Mapping[str, Any], restart_id: str, secret_name: str | None = None) -> bool:
    """True when patching again would roll the pods for nothing: the template already carries
    this restart id, or (``secret_name`` given: the Secret this restart id wrote) a later restart
    recorded that Secret as written by this id (see the module docstring)."""
    if template_annotations(workload).get(ROTATION_ID) == restart_id:
        return True
    return secret_name is not None and restarted_for(workload).get(secret_name) == restart_id


def restart_patch(restart_id: str, now: datetime, record: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merge patch that rolls the workload's pods, stamped with the restart id and time, and
    the record of the Secrets its new pods will read (none: the annotation is removed, so an old
    record never outlives the patch it described). The workload itself is labelled a consumer:
    from then on the operator's label-selected watch covers it (verify reads its rollout from the
    watch cache and wakes on its progress)."""
    stamp = format_time(now)
    written = json.dumps(dict(sorted(record.items())), separators=(",", ":")) if record else None
    annotations = {RESTARTED_AT: stamp, ROTATION_ID: restart_id, RESTARTED_FOR: written}
    return {
        "metadata": {"labels": {CONSUMER_LABEL: CONSUMER}},
        "spec": {"template": {"metadata": {"annotations": annotations}}},
    }
