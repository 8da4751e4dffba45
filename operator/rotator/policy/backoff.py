"""How long to wait before retrying a step that hit a temporary failure.

Capped exponential backoff with "equal jitter": the delay for attempt ``n`` lies in
``[ceiling / 2, ceiling]`` where ``ceiling = min(cap, base * 2**n)``. Half is fixed so a retry is
never immediate (a store that just refused us gets a breather); half is jittered so many
policies failing against the same store at once do not retry in lockstep.

The jitter is deterministic: a fraction derived from ``(seed, attempt)`` by SHA-256 instead of
``random``, so the engine (which passes e.g. the rotation id as seed) is reproducible, tests
need no patching, and an operator restart does not reshuffle the delays.
"""

from __future__ import annotations

import hashlib

__all__ = ["retry_delay"]

# 2.0 ** 1024 overflows a float; any exponent past this point is far beyond any sane cap anyway.
_MAX_EXPONENT = 62


def _fraction(seed: str, attempt: int) -> float:
    """A stable pseudo-random number in ``[0, 1)`` for this seed and attempt."""
    digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def retry_delay(attempt: int, base: float = 1.0, cap: float = 60.0, *, seed: str = "") -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Always within ``[min(base, cap) / 2, cap]``, and the ceiling never decreases with
    ``attempt``. Raises ValueError for a negative attempt or a non-positive base/cap: those are
    programming errors, not conditions to retry.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError(f"base and cap must be positive, got base={base} cap={cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    half = ceiling / 2
    return min(cap, half + half * _fraction(seed, attempt))
