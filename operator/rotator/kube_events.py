"""Kubernetes Events, posted with the operator's own API client from the thread that decided them.

Kopf's poster sent each Event from the event loop over aiohttp: ~5 % of the operator's CPU in a
mass rotation, on the same core as every watch event (issue 11). Here an Event is one POST on a
kept-alive connection, counted like every other request (``Kube``) but taking no token from the
client-side bucket, as Kopf's did not: Events are bounded by the rotations whose requests do,
and must not hold a rotation back.

Names follow client-go's recorder (``<object>.<nanoseconds in hex>``): readable in ``kubectl get
events`` and never a generated-name collision. An Event is auxiliary: one that cannot be posted
is logged (reason and object, never its message's data) and the reconcile goes on.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from rotator.kube import Kube, KubeError
from rotator.models import Event

log = logging.getLogger("rotator.events")

COMPONENT: Final = "rotator"
MAX_MESSAGE: Final = 1024
"""The API server refuses longer messages; the middle is cut, as Kopf did."""
_MAX_NAME: Final = 253
CLUSTER_SCOPED_NAMESPACE: Final = "default"
"""Where an Event about a cluster-scoped object (a ClusterRotationStore) goes, as kubectl and
client-go put them."""


def event_body(
    obj: Mapping[str, Any], event: Event, now: datetime, nanoseconds: int, instance: str
) -> dict[str, Any]:
    """The Event about ``obj`` (the object as read: its apiVersion, kind and metadata)."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or CLUSTER_SCOPED_NAMESPACE)
    name = str(meta.get("name") or "")
    suffix = f".{nanoseconds:x}"
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": name,
        "namespace": namespace,
        **({"uid": meta["uid"]} if meta.get("uid") else {}),
    }
    stamp = now.astimezone(UTC).isoformat()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name[: _MAX_NAME - len(suffix)]}{suffix}", "namespace": namespace},
        "type": "Warning" if event.warning else "Normal",
        "reason": event.reason,
        "message": _shortened(event.message),
        "action": "Reconcile",
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "source": {"component": COMPONENT},
        "involvedObject": ref,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": stamp,
        "count": 1,
    }


def _shortened(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    infix = "..."
    head = (MAX_MESSAGE - len(infix)) // 2
    return f"{message[:head]}{infix}{message[len(message) - (MAX_MESSAGE - len(infix) - head) :]}"


class EventPoster:
    """Posts Events through a ``Kube`` client (thread-safe: it holds no state of its own)."""

    def __init__(
        self,
        kube: Kube,
        *,
        instance: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nanoseconds: Callable[[], int] = time.time_ns,
    ) -> None:
        self._kube = kube
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._nanoseconds = nanoseconds

    def post(self, obj: Mapping[str, Any], events: Iterable[Event]) -> None:
        for event in events:
            body = event_body(obj, event, self._clock(), self._nanoseconds(), self._instance)
            path = f"/api/v1/namespaces/{body['metadata']['namespace']}/events"
            try:
                self._kube.request("POST", path, body, rate_limited=False)
            except KubeError as exc:
                ref = body["involvedObject"]
                log.warning(
                    "could not post Event %s about %s %s/%s: %s %s",
                    event.reason,
                    ref["kind"],
                    ref["namespace"],
                    ref["name"],
                    exc.status or "",
                    exc.reason,
                )
