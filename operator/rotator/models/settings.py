"""The operator's tunables, in one documented place (in the manner of Kopf's configuration).

Each field says its unit and why its default is what it is. ``rotator run`` sets them from its
flags; tests pass their own. Nothing else in the operator hard-codes a delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Settings:
    idle_resync: float = 30.0
    """Seconds between looks at an idle policy (drift repair, schedule). A due time sooner than
    this wakes the policy at that time instead; a spec or annotation change wakes it at once."""

    poll: float = 1.0
    """Seconds between looks while a step waits (a rollout in progress, restarts throttled by
    ``restart.maxConcurrent``). One second keeps a rotation's wall time close to the rollout's
    own while costing a handful of reads per target per rollout."""

    backoff_base: float = 1.0
    """Seconds: the first retry after a temporary failure (store or API unreachable) comes after
    half to all of this; each further failure doubles it (see :mod:`rotator.policy.backoff`)."""

    backoff_cap: float = 60.0
    """Seconds: the longest wait between retries of a temporary failure. A minute bounds how late
    a policy notices the store is back, without hammering a store that is down."""

    permanent_error_recheck: float = 60.0
    """Seconds between re-checks of a permanent refusal (foreign Secret, unowned store path). A
    human fixes those; a minute is soon enough to notice and cheap for many broken policies."""

    pause_after_failure: timedelta = field(default_factory=lambda: timedelta(hours=1))
    """After a rolled-back or failed rotation, scheduled, maxAge and spec-change triggers wait
    this long (``status.retryNotBefore``): the trigger that fired still holds, and retrying at
    once would restart every consumer twice per attempt, for ever. A force does not wait."""
