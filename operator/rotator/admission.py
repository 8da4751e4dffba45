"""Which policy's reconcile runs next, on how many threads, and how many rotations run at once.

Every reconcile is blocking I/O (the Kubernetes API, the store), so it runs on a thread. Handing
them all to asyncio's default executor (``min(32, cores + 4)`` threads: 6 on two cores) queues
them first come, first served: when 1,000 policies are forced at once, each step of each rotation
goes to the back of a 1,000-deep queue, every policy advances one step per round, and all of them
hold two live credentials until nearly the end of the run.

:class:`Admission` queues reconciles itself instead, in two classes:

* a policy **in a rotation** (its object has ``status.rotation``) goes first, and always may go:
  finishing what is started is what shortens the dual-credential window, and holding back a
  rotation that is already half done could never free anything. So does the reconcile a policy
  asked for at once (requeue 0: the look right after its rotation ended), which would otherwise
  queue behind every policy still waiting to start; and so does a look that can only name an
  invalid spec (it starts nothing);
* any other reconcile (an idle look, which may *start* a rotation) waits until fewer than
  ``max_rotating`` policies are in an active rotation.

So rotations start in bounded waves of ``max_rotating`` and each finishes within about its own
step count of rounds. A policy counts as active from the reconcile that left it rotating until
one leaves it idle, except while it sleeps longer than :data:`PARKED`: a rotation waiting out a
grace period or a long backoff is not using the machine, and must not keep others from starting.

No Kopf here (handlers.py drives it); no clock either: who goes next is decided by counts alone.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")

PARKED: Final = 30.0
"""Seconds: a rotating policy that sleeps longer than this (a grace period, a backoff) stops
counting against ``max_rotating`` until it runs again. Rollout and verify polls are far shorter."""

_ROTATING, _IDLE = 0, 1  # queue classes: lower goes first


class Admission:
    """Runs reconciles on ``workers`` threads, rotating policies first, at most ``max_rotating``
    rotations active at once (see the module docstring). One per operator process; its methods
    are called from the event loop only."""

    def __init__(self, workers: int, max_rotating: int) -> None:
        if workers < 1 or max_rotating < 1:
            raise ValueError(f"workers and max_rotating must be at least 1; got {workers}, {max_rotating}")
        self.workers = workers
        self.max_rotating = max_rotating
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rotator-reconcile")
        self._running = 0
        #: Policies in an active rotation (see PARKED).
        self._active: set[Hashable] = set()
        #: Policies whose last reconcile asked for the next one at once.
        self._continuing: set[Hashable] = set()
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # first come, first served within a class

    @property
    def active(self) -> int:
        """Policies counted as in an active rotation."""
        return len(self._active)

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._queue if not future.done())

    async def run(self, key: Hashable, rotating: bool, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a worker thread once admitted. ``rotating``: the object the
        reconcile starts from is in a rotation, or the reconcile cannot start one (an invalid
        spec: ``rotator.engine.cannot_start_rotation``), so it goes first, whatever the cap."""
        first = rotating or key in self._active or key in self._continuing
        self._continuing.discard(key)
        await self._admitted(_ROTATING if first else _IDLE)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            self._running -= 1
            self._dispatch()

    def settle(self, key: Hashable, rotating: bool, requeue: float | None) -> None:
        """After a reconcile: whether the policy now counts as an active rotation."""
        if requeue is not None and requeue <= 0:
            self._continuing.add(key)
        if rotating and requeue is not None and requeue <= PARKED:
            self._active.add(key)
        else:
            self._active.discard(key)
            self._dispatch()

    def forget(self, key: Hashable) -> None:
        """The policy's loop ended (deleted, or the operator stops)."""
        self._active.discard(key)
        self._continuing.discard(key)
        self._dispatch()

    def close(self) -> None:
        """Stop taking work; a reconcile already on a thread finishes (the interpreter waits)."""
        for *_, future in self._queue:
            future.cancel()
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _admitted(self, klass: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (klass, next(self._order), future))
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._running -= 1  # admitted and cancelled in the same turn: give the slot back
                self._dispatch()
            raise

    def _dispatch(self) -> None:
        """Admit from the head of the queue while a thread is free and the head may go."""
        while self._queue and self._running < self.workers:
            klass, _, future = self._queue[0]
            if future.done():  # its waiter was cancelled
                heapq.heappop(self._queue)
                continue
            if klass == _IDLE and len(self._active) >= self.max_rotating:
                return  # the head is the best there is: everything behind it is idle too
            heapq.heappop(self._queue)
            self._running += 1
            future.set_result(None)
