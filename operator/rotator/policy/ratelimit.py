"""Client-side limits toward the Kubernetes API: a token bucket, and how to read Retry-After.

client-go's defaults (5 requests/s, bursts of 10) are sized for controllers that poll; rotator
costs about 0 requests at rest and ~15 per rotation, so its budget goes to rotations: the
defaults (``DEFAULT_QPS``, ``DEFAULT_BURST``; ``rotator run --kube-qps/--kube-burst``) let a wave
of forced rotations proceed at ~3 rotations/s while capping what a mass event can ask of the
API server. Watches and Events (``rotator.kube_events``) take no token: Events are bounded by
the rotations whose requests do.

Pure: the bucket is told the time (no clock, no sleeping here); ``rotator.kube`` sleeps.
"""

from __future__ import annotations

import threading
from typing import Final

__all__ = ["DEFAULT_BURST", "DEFAULT_QPS", "MAX_RETRY_AFTER", "TokenBucket", "retry_after_seconds"]

DEFAULT_QPS: Final = 50.0
DEFAULT_BURST: Final = 100

MAX_RETRY_AFTER: Final = 30.0
"""Longest Retry-After honoured in one wait; a server asking for more gets KubeUnavailable and
the engine's backoff (a worker thread is not parked for minutes)."""


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved up; ``qps <= 0`` means unlimited.

    ``reserve(now)`` takes a token and answers how long the caller must wait before using it
    (0 when one was available). Reservations queue: ten callers at once on an empty bucket
    wait 1/qps, 2/qps, ... Thread-safe.
    """

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last: float | None = None
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        if self.qps <= 0:
            return 0.0
        with self._lock:
            if self._last is not None:
                self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


def retry_after_seconds(header: str | None) -> float | None:
    """The delay a 429 asks for (seconds form, as kube-apiserver sends it), or None.

    An HTTP date, a negative or a garbled value counts as absent: the request is not retried
    here and the engine's backoff decides.
    """
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
