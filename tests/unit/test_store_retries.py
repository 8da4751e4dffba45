"""The stores' quick retries: how many attempts, how long between them, what is retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rotator.stores.retries import QuickRetries, wait_before


class Blip(Exception):
    pass


class Refusal(Exception):
    pass


def _failing(times: int, exc: Exception, calls: list[int]) -> Callable[[], str]:
    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "answer"

    return call


def test_waits_double_from_a_fifth_of_a_second_and_stop_at_one() -> None:
    assert [wait_before(attempt) for attempt in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_transient_failure_is_retried_until_an_attempt_answers() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    retries = QuickRetries(3, lambda exc: isinstance(exc, Blip), sleeps.append)
    assert retries(_failing(2, Blip(), calls)) == "answer"
    assert len(calls) == 3
    assert sleeps == [0.2, 0.4]


def test_the_last_attempts_failure_is_raised_as_it_is() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    blip = Blip("third time")
    retries = QuickRetries(3, lambda exc: isinstance(exc, Blip), sleeps.append)
    with pytest.raises(Blip) as raised:
        retries(_failing(5, blip, calls))
    assert raised.value is blip
    assert len(calls) == 3
    assert sleeps == [0.2, 0.4]


def test_a_failure_that_is_not_retryable_is_raised_at_once() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    retries = QuickRetries(3, lambda exc: isinstance(exc, Blip), sleeps.append)
    with pytest.raises(Refusal):
        retries(_failing(1, Refusal(), calls))
    assert len(calls) == 1
    assert sleeps == []
