"""Client-side limits toward the API server, against the emulator (issue 11): the token bucket
spaces requests, a 429 with Retry-After is waited out and retried, one without it is not.

Counted, not timed: the clock and the sleeps are the test's, the requests are real ones.
"""

from __future__ import annotations

import re

import pytest

from rotator.kube import Kube, KubeUnavailable
from rotator.kube_connection import KubeConnection
from rotator.policy.ratelimit import TokenBucket
from rotator.sandbox.kube_emulator import Fault
from rotator.sandbox.kube_server import KubeServer

NS = "default"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _kube(api: KubeConnection, clock: Clock, sent: list[str], **kwargs: object) -> Kube:
    return Kube(
        api,
        on_request=lambda verb, resource: sent.append(f"{verb} {resource}"),
        clock=lambda: clock.now,
        sleep=clock.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_token_bucket_spaces_requests_after_the_burst(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    clock, sent = Clock(), []
    kube = _kube(kube_client, clock, sent, limiter=TokenBucket(qps=4.0, burst=2))
    for _ in range(5):
        assert kube.get_secret(NS, "absent") is None
    assert len(sent) == 5
    assert clock.slept == [0.25, 0.25, 0.25]  # after the burst of 2: one request per 1/qps


def test_a_429_with_retry_after_is_waited_out_and_retried(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    clock, sent = Clock(), []
    kube = _kube(kube_client, clock, sent)
    kube.create_secret(NS, {"metadata": {"name": "s"}, "data": {}})
    kube_server.add_fault(
        Fault(re.compile(r"/secrets/s$"), "GET", 429, "TooManyRequests", times=2, retry_after=2)
    )
    sent.clear()
    found = kube.get_secret(NS, "s")
    assert found is not None
    assert found["metadata"]["name"] == "s"
    assert sent == ["get secrets"] * 3  # every attempt counted: it cost the API server all the same
    assert clock.slept == [2.0, 2.0]


def test_a_429_is_retried_a_bounded_number_of_times(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    clock, sent = Clock(), []
    kube = _kube(kube_client, clock, sent, retries=2)
    kube_server.add_fault(
        Fault(re.compile(r"/secrets/s$"), "GET", 429, "TooManyRequests", times=None, retry_after=1)
    )
    with pytest.raises(KubeUnavailable) as raised:
        kube.get_secret(NS, "s")
    assert raised.value.status == 429
    assert (len(sent), clock.slept) == (3, [1.0, 1.0])


def test_a_429_without_retry_after_or_asking_too_long_goes_to_the_engines_backoff(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    clock, sent = Clock(), []
    kube = _kube(kube_client, clock, sent)
    kube_server.add_fault(Fault(re.compile(r"/secrets/a$"), "GET", 429, "TooManyRequests"))
    kube_server.add_fault(Fault(re.compile(r"/secrets/b$"), "GET", 429, "TooManyRequests", retry_after=3600))
    for name in ("a", "b"):
        with pytest.raises(KubeUnavailable):
            kube.get_secret(NS, name)
    assert (len(sent), clock.slept) == (2, [])
