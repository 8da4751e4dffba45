"""Frozen models validated lately, by the marshal encoding of the JSON they were parsed from.

A policy's spec and its store's spec are validated on every reconcile (the admission check on
the event loop, the reconcile itself, each reconcile of a chain), and they rarely change. The
models are frozen (their sequences are tuples), so one instance can be handed to every caller.
An encoding costs a few microseconds; a validation, a hundred or more. Not for statuses: one
changes with every write, so its encoding would mostly be paid for a miss.
"""

from __future__ import annotations

import marshal
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

M = TypeVar("M")


class Memo(Generic[M]):
    """The ``limit`` models made last, least recently used dropped first. Only successes are
    kept: a raw value that fails validation fails again each time, with its own error."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._made: OrderedDict[bytes, M] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: Mapping[str, Any], make: Callable[[Mapping[str, Any]], M]) -> M:
        try:
            key: bytes | None = marshal.dumps(dict(raw))
        except ValueError:  # not plain JSON (a test's model object): validated, not remembered
            key = None
        if key is not None:
            with self._lock:
                if (made := self._made.get(key)) is not None:
                    self._made.move_to_end(key)
                    return made
        made = make(raw)
        if key is not None:
            with self._lock:
                self._made[key] = made
                if len(self._made) > self._limit:
                    self._made.popitem(last=False)
        return made
