"""Reloader-style restart decisions (pure): which patch restarts a workload, and whether it is needed.

Changing an annotation on the pod template is the one portable way to make every workload
controller roll its pods; it is also what `kubectl rollout restart` does. The annotation
carries the rotation id, so a retried or resumed rotation never restarts a target twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rotator.models import format_time
from rotator.models.keys import RESTARTED_AT, ROTATION_ID


def template_annotations(workload: Mapping[str, Any]) -> Mapping[str, str]:
    template = workload.get("spec", {}).get("template", {})
    annotations: Mapping[str, str] = template.get("metadata", {}).get("annotations") or {}
    return annotations


def already_restarted(workload: Mapping[str, Any], restart_id: str) -> bool:
    """True when the pod template already carries this restart id: patching again would roll twice."""
    return template_annotations(workload).get(ROTATION_ID) == restart_id


def restart_patch(restart_id: str, now: datetime) -> dict[str, Any]:
    """The merge patch that rolls the workload's pods, stamped with the restart id and time."""
    stamp = format_time(now)
    return {
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp, ROTATION_ID: restart_id}}}}
    }
