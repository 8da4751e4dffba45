"""Prometheus collectors (DESIGN §4).

Labels are bounded: namespace/policy come from objects the operator owns, the rest are
closed sets (step names, store kinds, results, reasons). No collector ever carries a value
derived from a credential.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


@dataclass
class Metrics:
    """All collectors on one registry, so tests and the sandbox can read a fresh set."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        policy = ["namespace", "policy"]
        self.rotations_total = Counter(
            "rotator_rotations_total",
            "Rotations finished, by result and trigger reason.",
            [*policy, "result", "reason"],
            registry=reg,
        )
        self.step_duration = Histogram(
            "rotator_rotation_step_duration_seconds",
            "Time spent executing one rotation step (one attempt).",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=reg,
        )
        self.in_progress = Gauge(
            "rotator_rotation_in_progress", "1 while a rotation is running.", policy, registry=reg
        )
        self.credential_age = Gauge(
            "rotator_credential_age_seconds",
            "Seconds since the current credential was issued.",
            policy,
            registry=reg,
        )
        self.next_rotation = Gauge(
            "rotator_next_rotation_timestamp_seconds",
            "Unix time of the next scheduled rotation; absent while the policy is suspended or in "
            "dry run (nothing would rotate then, so nothing can be overdue).",
            policy,
            registry=reg,
        )
        self.suspended = Gauge(
            "rotator_policy_suspended",
            "1 while the policy is suspended or in dry run (no rotation starts; no next rotation "
            "is exported).",
            policy,
            registry=reg,
        )
        self.last_success = Gauge(
            "rotator_last_success_timestamp_seconds",
            "Unix time of the last successful rotation.",
            policy,
            registry=reg,
        )
        self.lease_expiry = Gauge(
            "rotator_lease_expiry_timestamp_seconds",
            "Unix time at which the current credential's lease ends unless renewed (vaultDatabase).",
            policy,
            registry=reg,
        )
        self.lease_age = Gauge(
            "rotator_lease_age_seconds",
            "Seconds since the current credential's lease was issued (vaultDatabase).",
            policy,
            registry=reg,
        )
        self.store_requests = Counter(
            "rotator_store_requests_total",
            "Requests to credential stores, by store kind, operation and result.",
            ["store", "operation", "result"],
            registry=reg,
        )
        self.kube_requests = Counter(
            "rotator_kube_requests_total",
            "Requests to the Kubernetes API made by the operator's client (the Events it posts "
            "and its lists and watches included), by verb and resource plural.",
            ["verb", "resource"],
            registry=reg,
        )
        self.watch_healthy = Gauge(
            "rotator_watch_healthy",
            "1 while a watch of the operator (watch: what it watches, @ the namespace or * for the "
            "cluster) lists and watches, 0 from its first failure until it does again: while 0, "
            "changes there (new policies, force-rotate annotations, drift) go unnoticed.",
            ["watch"],
            registry=reg,
        )
        self.restarts_total = Counter(
            "rotator_restarts_total", "Workload restarts triggered, by kind.", ["kind"], registry=reg
        )

    def count_kube_request(self, verb: str, resource: str) -> None:
        """``rotator.kube.Kube``'s ``on_request``."""
        self.kube_requests.labels(verb=verb, resource=resource).inc()

    def watch_health(self, watch: str, healthy: bool) -> None:
        """``rotator.informer.Informer``'s ``on_health``."""
        self.watch_healthy.labels(watch=watch).set(1 if healthy else 0)

    def forget_policy(self, namespace: str, policy: str) -> None:
        """Drop per-policy series when a policy is deleted, so dashboards do not show ghosts."""
        for gauge in (
            self.in_progress,
            self.credential_age,
            self.next_rotation,
            self.last_success,
            self.suspended,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, policy)
        self.forget_lease(namespace, policy)

    def forget_lease(self, namespace: str, policy: str) -> None:
        """Drop the lease series of a policy without a lease (another credential kind)."""
        for gauge in (self.lease_expiry, self.lease_age):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, policy)
