"""A store call's few quick retries of a transient failure, before the engine's own backoff.

Three attempts, 0.2 s then 0.4 s apart (doubling, at most 1 s): a Vault or AWS blip is ridden
out inside the reconcile; anything longer is the engine's backoff. A plain loop rather than a
retry library: it runs around every store request (8 a rotation), where a library's per-call
bookkeeping was 2 % of the operator's CPU in a mass rotation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

FIRST_WAIT = 0.2
LONGEST_WAIT = 1.0


def wait_before(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return min(LONGEST_WAIT, FIRST_WAIT * 2.0 ** (attempt - 1))


@dataclass(frozen=True)
class QuickRetries:
    """Call ``fn`` up to ``attempts`` times while its failure is ``retryable``; the last failure,
    or the first one that is not retryable, is raised as it is."""

    attempts: int
    retryable: Callable[[Exception], bool]
    sleep: Callable[[float], None] = field(default=time.sleep)

    def __call__(self, fn: Callable[[], T]) -> T:
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.attempts or not self.retryable(exc):
                    raise
            self.sleep(wait_before(attempt))
            attempt += 1
