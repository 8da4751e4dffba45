"""Which workloads a rotation restarts, verifies and rolls back: shared by those three steps.

* planned: ``spec.restart.targets`` then, with ``restart.auto``, every consumer found in the
  namespace (listed afresh on each run of the restart step, so a workload created meanwhile is
  included and one deleted meanwhile is not waited for);
* recorded: ``status.rotation.restartedTargets``, every workload restarted (or found already
  restarted) for this rotation, discovered ones included: what verify waits for and rollback
  restarts again, even once removed from the spec or no longer found.
"""

from __future__ import annotations

from rotator.steps.context import StepContext
from rotator.workloads.discovery import Consumer, restart_plan
from rotator.workloads.io import list_workloads
from rotator.workloads.kinds import KINDS


def planned(ctx: StepContext) -> tuple[Consumer, ...]:
    """Explicit targets first, then (``restart.auto``) discovered consumers; each once."""
    restart = ctx.spec.restart
    listed = list_workloads(ctx.kube, ctx.policy.namespace) if restart.auto else None
    explicit = ((str(t.kind), t.name) for t in restart.targets)
    return restart_plan(explicit, ctx.spec.secret.name, listed)


def recorded(ctx: StepContext) -> tuple[Consumer, ...]:
    """The restarted targets of this rotation; explicit when the spec still names them. An
    entry of an unknown kind (a hand-edited status) is ignored."""
    named = {(str(t.kind), t.name) for t in ctx.spec.restart.targets}
    found: list[Consumer] = []
    for key in ctx.restarted_targets:
        kind, _, name = key.partition("/")
        if name and kind in KINDS:
            found.append(Consumer(kind, name, explicit=(kind, name) in named))
    return tuple(found)


def verified(ctx: StepContext) -> tuple[Consumer, ...]:
    """What verify checks: every explicit target, then every other recorded one."""
    explicit = tuple(Consumer(str(t.kind), t.name, explicit=True) for t in ctx.spec.restart.targets)
    return explicit + tuple(c for c in recorded(ctx) if not c.explicit)
