"""handlers._reconcile follows requeue-0 results on its thread: what it hands back to the loop."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rotator import handlers
from rotator.engine import Reconciled
from rotator.models import Event, RotationPolicyStatus, utcnow


def _runtime(leading: bool = True) -> Any:
    return SimpleNamespace(deps=None, clock=utcnow, leading=lambda: leading)


def _results(monkeypatch: pytest.MonkeyPatch, *outcomes: Reconciled | Exception) -> list[dict[str, Any]]:
    """engine.reconcile answers ``outcomes`` in turn; returns the objects it was called with."""
    started_from: list[dict[str, Any]] = []
    queue = list(outcomes)

    def reconcile(obj: dict[str, Any], *_: Any, **__: Any) -> Reconciled:
        started_from.append(obj)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(handlers.engine, "reconcile", reconcile)
    return started_from


def _result(requeue: float | None, written: str | None, *reasons: str, stale: bool = False) -> Reconciled:
    return Reconciled(
        requeue,
        [Event(reason, reason) for reason in reasons],
        RotationPolicyStatus(),
        written={"rv": written} if written else None,
        stale=stale,
    )


def test_steps_run_back_to_back_from_each_write_and_the_loop_gets_the_newest_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_from = _results(
        monkeypatch,
        _result(0.0, "2", "RotationStarted"),  # start: the next step at once
        _result(0.0, "3"),  # generate
        _result(5.0, None),  # a look that wrote nothing: waits
    )
    result = handlers._reconcile(_runtime(), {"rv": "1"}, 0, True)
    assert started_from == [{"rv": "1"}, {"rv": "2"}, {"rv": "3"}]
    assert result.requeue_after == 5.0
    assert result.written == {"rv": "3"}, "never the object the chain began with: its status is behind"
    assert [event.reason for event in result.events] == ["RotationStarted"]


def test_a_failure_later_in_the_chain_hands_back_what_was_done_and_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _results(monkeypatch, _result(0.0, "2", "RotationStarted"), RuntimeError("boom"))
    result = handlers._reconcile(_runtime(), {"rv": "1"}, 0, True)
    assert result.requeue_after == 0.0, "the loop runs the failed one again at once, and handles it"
    assert result.written == {"rv": "2"}
    assert [event.reason for event in result.events] == ["RotationStarted"]


def test_a_failure_of_the_first_reconcile_is_the_loops_to_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    _results(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        handlers._reconcile(_runtime(), {"rv": "1"}, 0, True)


def test_a_conflict_or_a_lost_lease_ends_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    started_from = _results(monkeypatch, _result(0.0, None, stale=True))
    stale = handlers._reconcile(_runtime(), {"rv": "1"}, 0, True)
    assert (stale.stale, stale.written, len(started_from)) == (True, None, 1), "read afresh, not chained"
    started_from = _results(monkeypatch, _result(0.0, "2"), _result(0.0, "3"))
    deposed = handlers._reconcile(_runtime(leading=False), {"rv": "1"}, 0, True)
    assert (deposed.written, len(started_from)) == ({"rv": "2"}, 1), "a standby runs no further step"
