"""Every named point of a rotation where a crash is most instructive, in the order they pass.

Production passes a no-op hook; ``ROTATOR_CRASH_AT=<point>`` makes the operator ``os._exit`` at
one (DESIGN §1 crash rules are tested by killing it at each). The crash tests take their list
from this enum, and a unit test runs a rotation and a rollback in-process and checks that the
code passes every member and nothing else: a new checkpoint cannot go untested.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from rotator.models import Step


class Checkpoint(StrEnum):
    START_AFTER_PERSIST = "start:after-persist"
    GENERATE_BEFORE_WRITE = "generate:before-write"
    #: Minted at the target (an IAM key exists) and not yet in the store: the orphan's moment.
    GENERATE_AFTER_MINT = "generate:after-mint"
    GENERATE_AFTER_WRITE = "generate:after-write"
    GENERATE_BEFORE_PERSIST = "generate:before-persist"
    DUAL_BEFORE_PROMOTE = "dual:before-promote"
    DUAL_AFTER_PROMOTE = "dual:after-promote"
    DUAL_BEFORE_PERSIST = "dual:before-persist"
    SYNC_BEFORE_WRITE = "sync:before-write"
    SYNC_AFTER_WRITE = "sync:after-write"
    SYNC_BEFORE_PERSIST = "sync:before-persist"
    RESTART_BEFORE_PATCH = "restart:before-patch"
    RESTART_AFTER_PATCH = "restart:after-patch"
    RESTART_BEFORE_PERSIST = "restart:before-persist"
    VERIFY_BEFORE_PERSIST = "verify:before-persist"
    REVOKE_BEFORE_SECRET = "revoke:before-secret"
    REVOKE_BEFORE_STORE = "revoke:before-store"
    REVOKE_AFTER_STORE = "revoke:after-store"
    REVOKE_BEFORE_PERSIST = "revoke:before-persist"
    ROLLBACK_BEFORE_SECRET = "rollback:before-secret"
    ROLLBACK_BEFORE_RESTART = "rollback:before-restart"
    ROLLBACK_BEFORE_STORE = "rollback:before-store"
    ROLLBACK_AFTER_STORE = "rollback:after-store"
    ROLLBACK_BEFORE_PERSIST = "rollback:before-persist"

    @property
    def during_rollback(self) -> bool:
        return self.startswith(f"{Step.ROLLBACK}:")

    @classmethod
    def before_persist(cls, step: Step) -> Checkpoint:
        """The moment a step's side effects are done and status is not saved yet: the riskiest."""
        return cls(f"{step}:before-persist")


CheckpointHook = Callable[[Checkpoint], None]


def no_checkpoint(point: Checkpoint) -> None:
    """Production has no fault injection; tests pass a hook that crashes at a named point."""
