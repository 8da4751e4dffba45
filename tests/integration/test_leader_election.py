"""Several replicas, one reconciling: leader election on a coordination.k8s.io/v1 Lease (issue 9).

- The elector against the API emulator, on a hand-moved clock: one holder, takeover only after
  the lease duration, a 409 for the loser of a race, release on a clean stop, a deposed leader
  stopped at its next checkpoint.
- The operator as a standby: while another holder renews the Lease it reconciles nothing; when
  the renewals stop it takes over and rotates.
- The HA proof: two operator processes on one stack, the leader SIGKILLed at seeded random
  moments of 30 forced rotations and restarted: every rotation completes with exactly one new
  store version, nothing pending is left behind, and each takeover is timed.
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from rotator.kube import Kube, KubeConflict
from rotator.kube_connection import KubeConnection
from rotator.leader import LeaderElector, LeadershipLost
from rotator.models import LeaderElection, utcnow
from rotator.policy.leader import LeaseRecord, claim, lease_spec, record_of
from rotator.sandbox.operator_process import OperatorProcess
from tests.fixtures.figures import figure
from tests.fixtures.rotation import Bench, assert_no_orphan, force_handled

LEASE_NS = "rotator-system"
LEASE = "rotator-leader"

# Short timings for the process tests (the defaults are 15 / 10 / 2 s): same order, same rules.
DURATION, DEADLINE, RETRY = 2.0, 1.5, 0.25
TIMING_ARGS = (
    "--leader-election-namespace",
    LEASE_NS,
    "--leader-election-lease-duration",
    str(DURATION),
    "--leader-election-renew-deadline",
    str(DEADLINE),
    "--leader-election-retry-period",
    str(RETRY),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(kube: Kube, name: str, clock: Clock) -> LeaderElector:
    config = LeaderElection(namespace=LEASE_NS, identity=name)
    return LeaderElector(kube, config, monotonic=clock)


def lease(kube: Kube) -> LeaseRecord:
    found = kube.get_lease(LEASE_NS, LEASE)
    assert found is not None
    return record_of(found)


@pytest.fixture
def kube(kube_client: KubeConnection) -> Kube:
    return Kube(kube_client)


# --- the elector, on a hand-moved clock ----------------------------------------------------------


def test_one_holder_renews_and_the_other_waits_out_the_lease_duration(kube: Kube) -> None:
    clock = Clock()
    a, b = elector(kube, "a", clock), elector(kube, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert (a.leading(), b.leading()) == (True, False)
    first = lease(kube)
    assert (first.holder, first.lease_duration, first.transitions) == ("a", 15.0, 0)

    clock.now += 2
    assert a.try_acquire_or_renew(), "a renews"
    assert not b.try_acquire_or_renew()
    renewed = lease(kube)
    assert renewed.acquire_time == first.acquire_time
    assert renewed.renew_time is not None
    assert first.renew_time is not None
    assert renewed.renew_time > first.renew_time

    clock.now += 10  # a stops renewing (it died, or the API is unreachable for it)
    assert not a.leading(), "past the renew deadline a leader stops by itself"
    with pytest.raises(LeadershipLost):
        a.stop_unless_leading("generate:before-write")
    clock.now += 4.9  # b saw the last renewal at +2: 14.9 s ago
    assert not b.try_acquire_or_renew()
    clock.now += 0.1
    assert b.try_acquire_or_renew(), "15 s without a renewal: b takes over"
    taken = lease(kube)
    assert (taken.holder, taken.transitions) == ("b", 1)
    assert not a.try_acquire_or_renew(), "the old leader finds the Lease taken and waits"
    b.stop_unless_leading("generate:before-write")  # the new leader passes its checkpoints


def test_of_two_writers_of_an_expired_lease_exactly_one_wins(kube: Kube) -> None:
    body = {"metadata": {"name": LEASE, "namespace": LEASE_NS}, "spec": lease_spec(LeaseRecord("gone", 15))}
    read = kube.create_lease(LEASE_NS, body)
    version = read["metadata"]["resourceVersion"]
    for name, outcome in (("a", "won"), ("b", "lost")):
        write = {
            "metadata": {"name": LEASE, "namespace": LEASE_NS, "resourceVersion": version},
            "spec": lease_spec(claim(record_of(read), name, utcnow(), 15.0)),
        }
        if outcome == "won":
            kube.replace_lease(LEASE_NS, LEASE, write)
        else:
            with pytest.raises(KubeConflict):
                kube.replace_lease(LEASE_NS, LEASE, write)
    with pytest.raises(KubeConflict):
        kube.create_lease(LEASE_NS, body)
    assert lease(kube).holder == "a"


def test_a_clean_stop_releases_and_the_standby_takes_over_at_once(kube: Kube) -> None:
    clock = Clock()
    a, b = elector(kube, "a", clock), elector(kube, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert not a.leading()
    released = lease(kube)
    assert (released.holder, released.lease_duration) == ("", 1.0)
    assert b.try_acquire_or_renew(), "no need to wait out the duration"
    assert lease(kube).transitions == 1
    b.release()
    b.release()  # idempotent


def test_the_elector_thread_notifies_and_releases(kube: Kube) -> None:
    config = LeaderElection(
        namespace=LEASE_NS, identity="t", lease_duration=2, renew_deadline=1, retry_period=0.1
    )
    became = threading.Event()
    runner = LeaderElector(kube, config)
    runner.on_leading(became.set)
    runner.start()
    try:
        assert became.wait(5)
        assert runner.leading()
        assert runner.term == 1
    finally:
        runner.stop()
    assert not runner.leading()
    assert lease(kube).holder == ""


# --- the operator as a standby --------------------------------------------------------------------


class ForeignLeader:
    """Another replica holding the Lease and renewing it every retry period, until it "dies"."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.dead = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def _renew(self) -> None:
        while not self.dead.wait(RETRY):
            found = self.kube.get_lease(LEASE_NS, LEASE)
            assert found is not None
            record = claim(record_of(found), "someone-else", utcnow(), DURATION)
            found["spec"] = lease_spec(record)
            self.kube.replace_lease(LEASE_NS, LEASE, found)

    def __enter__(self) -> ForeignLeader:
        body = {
            "metadata": {"name": LEASE, "namespace": LEASE_NS},
            "spec": lease_spec(claim(None, "someone-else", utcnow(), DURATION)),
        }
        self.kube.create_lease(LEASE_NS, body)
        self.thread.start()
        return self

    def die(self) -> None:
        """Stop renewing without releasing, as a SIGKILL would."""
        self.dead.set()
        self.thread.join(timeout=5)

    def __exit__(self, *_: object) -> None:
        self.die()


def test_the_standby_reconciles_nothing_while_the_leader_holds_the_lease(bench: Bench) -> None:
    bench.seed()
    bench.operator.extra_args = TIMING_ARGS
    with ForeignLeader(bench.kube) as leader:
        bench.operator.start()
        bench.operator.wait_healthy()
        time.sleep(3 * DURATION)  # several lease durations: renewed all along, never expired
        assert not bench.policy().get("status"), "a standby wrote status"
        assert lease(bench.kube).holder == "someone-else"
        died = time.monotonic()
        leader.die()
        bench.wait_rotations(1, timeout=30)
    assert time.monotonic() - died >= DURATION, "taken over before the lease expired"
    assert lease(bench.kube).holder not in ("", "someone-else")
    assert lease(bench.kube).transitions == 1
    assert sorted(bench.kv_versions()) == [1]


# --- the HA proof --------------------------------------------------------------------------------

ROTATIONS = 30
SEED = 9
FIRST_RECONCILE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*first reconcile as leader", re.M)


def first_reconciles(log: Path) -> list[float]:
    """Wall-clock times of the "first reconcile as leader" lines in an operator log."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f").timestamp() for m in FIRST_RECONCILE.findall(text)]


@pytest.fixture
def standby(bench: Bench, tmp_path: Path) -> Iterator[OperatorProcess]:
    other = OperatorProcess(
        bench.operator.kubeconfig,
        tmp_path / "operator-b.log",
        idle_resync=bench.operator.idle_resync,
        poll=bench.operator.poll,
        pod_name="op-b",
        extra_args=TIMING_ARGS,
    )
    try:
        yield other
    finally:
        other.stop()


# Long by design (tens of kills, each waited out); beside other xdist workers on 2 cores it
# needs more than the suite's default 300 s.
@pytest.mark.timeout(900)
@pytest.mark.long(seconds=155)
def test_leader_killed_at_random_moments_of_30_rotations_loses_nothing(
    bench: Bench, standby: OperatorProcess
) -> None:
    rng = random.Random(SEED)
    bench.seed()
    first = bench.operator
    first.pod_name = "op-a"
    first.extra_args = TIMING_ARGS
    replicas = {"op-a": first, "op-b": standby}
    first.start()
    bench.wait_rotations(1, timeout=30)  # the first credential: version 1
    standby.start()
    standby.wait_healthy()
    takeovers: list[float] = []
    killed_during: dict[str, int] = {}  # the step the status showed at each kill
    for i in range(ROTATIONS):
        holder = lease(bench.kube).holder
        leader = replicas[holder.split("_", 1)[0]]
        other = standby if leader is first else first
        already = len(first_reconciles(other.log_path))
        value = f"ha-{i}"
        bench.force(value)
        if i % 3:
            # Inside the rotation: a chained rotation is over in a few tenths of a second, so a
            # kill timed from the force alone would mostly land after it. The write that starts
            # the rotation records the force as handled.
            bench.wait(functools.partial(force_handled, value=value), 10, "the rotation's start")
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            time.sleep(rng.uniform(0.0, 0.6))  # anywhere: before it starts, in it, or after it
        leader.kill()
        killed_at = time.time()
        caught = (bench.status().get("rotation") or {}).get("step", "idle")
        killed_during[caught] = killed_during.get(caught, 0) + 1
        deadline = time.monotonic() + 30
        while len(first_reconciles(other.log_path)) <= already:
            assert time.monotonic() < deadline, f"no takeover after kill {i}; see {other.log_path}"
            time.sleep(0.05)
        takeovers.append(first_reconciles(other.log_path)[already] - killed_at)
        leader.start()  # the killed replica comes back as the standby
        status = bench.wait_forced(value)
        assert status["history"][0]["result"] == "Succeeded", status["history"][0]
        assert status["currentVersion"] == str(i + 2), "a force made more or less than one rotation"
        assert_no_orphan(bench, i + 2)
        leader.wait_healthy()

    text = standby.log_path.read_text(errors="replace")  # the bench scans the first replica's log
    assert not [v for v in bench.seen_values if len(v) >= 8 and v in text], "a value in the standby's log"

    ordered = sorted(takeovers)
    figure(
        f"leader takeover after SIGKILL, {len(ordered)} kills (lease {DURATION:g} s): "
        f"min {ordered[0]:.2f} s, "
        f"median {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s; all: "
        + " ".join(f"{t:.2f}" for t in takeovers)
        + "; killed during: "
        + ", ".join(f"{step} {n}" for step, n in sorted(killed_during.items()))
    )
    assert max(takeovers) < DURATION + 5 * RETRY + 3, "a standby took far longer than the lease duration"
    assert sum(n for step, n in killed_during.items() if step != "idle") >= ROTATIONS // 2, killed_during
