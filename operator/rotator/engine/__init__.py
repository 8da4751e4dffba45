"""The engine: small reconcilers over a typed status (DESIGN §2; see docs/engine.md for the map).

``reconcile`` observes one policy, decides with the pure policy layer, runs at most one step and
writes what changed. Modules, top to bottom:

- ``reconcile``  entry and dispatch; unreadable status held, invalid spec named
- ``idle``       no rotation running: suspend, adoption, drift repair, the trigger chain
- ``dry_run``    what a rotation would do, touching nothing
- ``start``      a rotation's id and pins persisted before any side effect
- ``advance``    one step of a running rotation and the transition table
- ``finish``     history, result conditions, metrics, the pause after failure
- ``failures``   exceptions to conditions or jittered backoff (the one owner of retry timing)
- ``trigger``    the trigger chain asked, and a consumed force recorded (one place for both)
- ``facts``      pure mappings onto the trigger chain's and schedule's inputs
- ``schedule``   next due time in status and the per-policy gauges
- ``draft``      the typed status being built, its Events, and the merge-patch write
- ``deps``       what is injected: clients, store opener, settings, id generator, fault hook
- ``store_health`` a store object's Ready, written conditionally as a policy's status
"""

from rotator.engine.deps import Deps, StoreOpener
from rotator.engine.draft import Reconciled
from rotator.engine.failures import backoff
from rotator.engine.reconcile import cannot_start_rotation, reconcile

__all__ = ["Deps", "Reconciled", "StoreOpener", "backoff", "cannot_start_rotation", "reconcile"]
