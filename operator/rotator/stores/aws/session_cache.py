"""What an AWS store session carries between reconciles, apart from the store itself: imported
by the store opener at start, so it must not import botocore (a Vault-only operator never loads
it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rotator.stores.handover import Handover


@dataclass
class SMCache:
    """What one AWS session's stores carry from one reconcile (store object) to the next.

    ``handover``: per secret, the one value this process just wrote there (version id, value),
    taken out by the next ``read_value`` of that version (the sync step's; ``promote`` moves
    labels only), dropped by ``ensure_owned``, ``revoke`` and ``mark_failed``: no read-back of
    what was written a moment ago, and the revoke step's read is always a real one."""

    handover: Handover = field(default_factory=Handover)
