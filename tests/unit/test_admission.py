"""rotator.admission: rotating policies first, at most ``max_rotating`` active, ``workers`` threads.

Orders and counts only: each reconcile is a function blocked on a threading.Event the test
releases, so what matters is who was admitted, never how long anything took.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from rotator.admission import PARKED, Admission
from rotator.compact import pack, unpack


class Reconciles:
    """Blocking stand-ins for engine.reconcile: each records that it ran, then waits to be let go."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def fn(self, name: str) -> str:
        with self.lock:
            self.started.append(name)
            self.running += 1
            self.most = max(self.most, self.running)
        self.gates.setdefault(name, threading.Event()).wait(timeout=30)
        with self.lock:
            self.running -= 1
        return name

    def release(self, name: str) -> None:
        self.gates.setdefault(name, threading.Event()).set()


async def _until(check: Callable[[], bool]) -> None:
    """Yield to the loop and the worker threads until ``check`` holds (bounded by a count)."""
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_rotating_policies_go_first_and_idle_ones_wait_for_the_cap() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, max_rotating=1)
        calls = Reconciles()
        first = asyncio.create_task(admission.run("a", False, calls.fn, "a"))
        await _until(lambda: calls.started == ["a"])
        # Queued behind a: an idle look at b, then a reconcile of c which is mid-rotation.
        idle_b = asyncio.create_task(admission.run("b", False, calls.fn, "b"))
        await _until(lambda: admission.waiting == 1)
        rotating_c = asyncio.create_task(admission.run("c", True, calls.fn, "c"))
        await _until(lambda: admission.waiting == 2)
        calls.release("a")
        assert await first == "a"
        admission.settle("a", rotating=True, requeue=0.0)  # a started a rotation: one active
        await _until(lambda: calls.started == ["a", "c"])  # c jumped the queue
        calls.release("c")
        await rotating_c
        admission.settle("c", rotating=False, requeue=None)  # c finished its rotation
        # The thread is free, but b may not go: a is an active rotation and the cap is 1.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert calls.started == ["a", "c"]
        assert admission.waiting == 1
        # a's next step goes ahead of b (it is active), then a finishes and b is admitted.
        a_again = asyncio.create_task(admission.run("a", False, calls.fn, "a2"))
        await _until(lambda: calls.started == ["a", "c", "a2"])
        calls.release("a2")
        await a_again
        admission.settle("a", rotating=False, requeue=3600.0)
        await _until(lambda: calls.started == ["a", "c", "a2", "b"])
        calls.release("b")
        await idle_b
        assert admission.active == 0
        admission.close()

    _run(scenario)


def test_never_more_reconciles_at_once_than_workers() -> None:
    async def scenario() -> None:
        admission = Admission(workers=3, max_rotating=100)
        calls = Reconciles()
        names = [f"p{i}" for i in range(12)]
        tasks = [asyncio.create_task(admission.run(n, False, calls.fn, n)) for n in names]
        await _until(lambda: len(calls.started) == 3)
        for name in names:
            calls.release(name)
        assert sorted(await asyncio.gather(*tasks)) == sorted(names)
        assert calls.most == 3
        admission.close()

    _run(scenario)


def test_a_rotation_sleeping_past_parked_frees_its_place_in_the_wave() -> None:
    async def scenario() -> None:
        admission = Admission(workers=2, max_rotating=1)
        admission.settle("a", rotating=True, requeue=1.0)
        assert admission.active == 1
        admission.settle("a", rotating=True, requeue=PARKED + 1)  # waiting out a grace period
        assert admission.active == 0
        admission.settle("a", rotating=True, requeue=None)  # waiting for a wake-up only
        assert admission.active == 0
        admission.settle("b", rotating=True, requeue=0.0)
        admission.forget("b")  # its policy was deleted
        assert admission.active == 0
        admission.close()

    _run(scenario)


def test_a_cancelled_waiter_gives_up_its_place() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, max_rotating=10)
        calls = Reconciles()
        busy = asyncio.create_task(admission.run("a", False, calls.fn, "a"))
        await _until(lambda: calls.started == ["a"])
        gone = asyncio.create_task(admission.run("b", False, calls.fn, "b"))
        after = asyncio.create_task(admission.run("c", False, calls.fn, "c"))
        await _until(lambda: admission.waiting == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        calls.release("a")
        calls.release("c")
        await busy
        assert await after == "c"
        assert calls.started == ["a", "c"]
        admission.close()

    _run(scenario)


def test_settings_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(workers=0, max_rotating=5)


def test_a_packed_object_comes_back_equal() -> None:
    obj = {"metadata": {"name": "p", "annotations": {"a": "é"}}, "status": {"history": [{"n": 1}]}}
    packed = pack(obj)
    assert isinstance(packed, bytes)
    assert unpack(packed) == obj


def test_the_look_right_after_a_rotation_goes_before_policies_waiting_to_start() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, max_rotating=5)
        calls = Reconciles()
        busy = asyncio.create_task(admission.run("c", False, calls.fn, "c"))
        await _until(lambda: calls.started == ["c"])
        waiting = asyncio.create_task(admission.run("b", False, calls.fn, "b"))
        await _until(lambda: admission.waiting == 1)
        admission.settle("a", rotating=False, requeue=0.0)  # a's rotation ended: look again at once
        again = asyncio.create_task(admission.run("a", False, calls.fn, "a"))
        await _until(lambda: admission.waiting == 2)
        for name in ("c", "a", "b"):
            calls.release(name)
        await asyncio.gather(busy, again, waiting)
        assert calls.started == ["c", "a", "b"]
        admission.close()

    _run(scenario)
