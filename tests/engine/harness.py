"""In-process engine bench: ``engine.reconcile`` driven directly, with a fixed clock.

- cluster: the Kubernetes emulator in this process (a real API server over HTTP, started in a
  millisecond; its rollout simulator plays the controllers), reached through the real ``Kube``;
- store: the shipped FakeStore (same contract suite as Vault and AWS), with its fault switches;
- clock: a fixed ``now`` that the test moves; ids from a counter; checkpoints recorded.

Every reconcile returns what the issue asks the engine tests to look at: the status it left
(and the patch it wrote), the Events, and the requeue time.
"""

from __future__ import annotations

import base64
import copy
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rotator import engine
from rotator.kube import Kube, KubeError, WatchCache, policy_path, secret_path, watched_object
from rotator.metrics import Metrics
from rotator.models import PolicyRef, RotationPolicyStatus, Settings, Step
from rotator.models.keys import CONSUMER, CONSUMER_LABEL
from rotator.models.store import StoreRefKind
from rotator.sandbox import demo
from rotator.sandbox.kube_server import KubeServer
from rotator.stores.base import Store
from rotator.stores.fake import FakeStore
from rotator.tenancy.resolve import ResolvedStore, store_path
from rotator.tenancy.resolver import StoreResolver
from rotator.workloads.kinds import KINDS, workload_path

NS = "shop"
POLICY = demo.POLICY
SECRET = demo.SECRET
DEPLOYMENT = demo.DEPLOYMENT
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
#: A grace period for tests that stop between verify and revoke: without one verify chains
#: straight into revoke in one reconcile (``engine.advance._chained``), so no run stops there.
GRACE_SECONDS = 60
GRACE = {"gracePeriod": f"{GRACE_SECONDS}s"}
SETTINGS = Settings(idle_resync=30.0, poll=0.5, backoff_base=1.0, backoff_cap=60.0)


@dataclass
class Run:
    """One reconcile's observable result."""

    requeue: float | None
    events: list[tuple[str, str, bool]]
    status: RotationPolicyStatus
    temporary: bool
    writes: int
    #: API requests the engine made in this reconcile, by (verb, resource).
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def step(self) -> Step | None:
        """The step the rotation is at after this reconcile; None when no rotation runs."""
        return self.status.rotation.step if self.status.rotation is not None else None

    @property
    def reasons(self) -> list[str]:
        return [reason for reason, _, _ in self.events]

    def condition(self, kind: str) -> tuple[str, str, str]:
        found = next(c for c in self.status.conditions if c.type == kind)
        return str(found.status), found.reason, found.message


class CountingKube(Kube):
    """The real client, counting every request by (verb, resource) through the same hook that
    feeds ``rotator_kube_requests_total``, and the status writes (the engine must skip no-op ones).
    The rollout simulator acts inside the server: its requests never pass through here."""

    status_writes = 0

    def __init__(self, api_client: Any, request_timeout: float = 10.0) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.status_answers: list[tuple[str, str | None, int]] = []
        #: The body of every policy status write, in order (the merge patch as sent).
        self.status_patches: list[dict[str, Any]] = []
        super().__init__(api_client, request_timeout, on_request=self._count)

    def _count(self, verb: str, resource: str) -> None:
        self.requests[(verb, resource)] += 1

    def patch_policy_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> dict[str, Any]:
        self.status_writes += 1
        self.status_patches.append(copy.deepcopy(dict(status)))
        return super().patch_policy_status(namespace, name, status, resource_version=resource_version)

    def patch_status(
        self, path: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> dict[str, Any]:
        """Every status write (policies' and stores') as the API answered it:
        ``status_answers`` gets (path, resourceVersion sent, HTTP status)."""
        try:
            written = super().patch_status(path, status, resource_version=resource_version)
        except KubeError as exc:
            self.status_answers.append((path, resource_version, exc.status))
            raise
        self.status_answers.append((path, resource_version, 200))
        return written


@dataclass
class EngineBench:
    server: KubeServer
    kube: Kube
    store: FakeStore = field(default_factory=FakeStore)
    metrics: Metrics = field(default_factory=Metrics)
    now: datetime = T0
    checkpoints: list[str] = field(default_factory=list)
    auth_failures: list[str] = field(default_factory=list)
    settings: Settings = SETTINGS
    open_store: Callable[[PolicyRef, ResolvedStore], Store] | None = None
    _ids: int = 0
    #: As the operator runs (``watch()``): watched objects come from a watch cache, and each
    #: reconcile starts from the policy object the last status write returned.
    watching: bool = False
    _last: dict[str, Any] | None = None

    # --- arrange -----------------------------------------------------------------------------
    def seed(self, *, deployment: bool = True, progress_deadline: int = 600, **spec: Any) -> None:
        demo.apply_crd(self.kube)
        demo.create(self.kube, "/api/v1/namespaces", demo.namespace(NS))
        demo.create(self.kube, demo.store_collection(NS), demo.vault_store(NS, "http://vault.invalid:8200"))
        if deployment:
            demo.create(
                self.kube,
                f"/apis/apps/v1/namespaces/{NS}/deployments",
                demo.consumer_deployment(NS, replicas=2, progress_deadline=progress_deadline),
            )
        self.create_policy(deployment=deployment, **spec)

    def create_policy(self, *, name: str = POLICY, deployment: bool = True, **spec: Any) -> None:
        extra = {"verify": {"timeout": "30s"}, "revoke": {"gracePeriod": "0s"}, **spec}
        body = demo.rotation_policy(
            NS, name=name, deployment=DEPLOYMENT if deployment else None, path=POLICY, extra_spec=extra
        )
        self.kube.create(policy_path(NS), body)

    def watch(self) -> None:
        """Run as the operator does: a WatchCache on the client, fed before every reconcile with
        what the watches would have delivered (the managed Secret, the store object, the
        Deployment once rotator has labelled it a consumer) by reads outside the engine's count;
        the policy as the last status write returned it (a change made here, such as
        ``annotate``, is delivered as the watch would)."""
        self.kube.cache = WatchCache(watched_object)
        self.watching = True

    def _deliver(self) -> None:
        cache = self.kube.cache
        assert cache is not None
        self.kube.cache = None  # the watch's own traffic is not the engine's
        try:
            watched = (
                secret_path(NS, SECRET),
                store_path(StoreRefKind.ROTATION_STORE, NS, "vault"),
                workload_path("Deployment", NS, DEPLOYMENT),
            )
            for path in watched:
                found = self.kube.get(path)
                if found is not None:
                    cache.put(found)
                else:
                    cache.forget(path)
            # and every workload rotator has labelled a consumer (its label-selected watches)
            for kind in KINDS:
                for workload in self.kube.list(workload_path(kind, NS), f"{CONSUMER_LABEL}={CONSUMER}"):
                    cache.put(workload)
        finally:
            self.kube.cache = cache

    def edit_spec(self, **spec: Any) -> None:
        self._last = None
        self.kube.merge_patch(policy_path(NS, POLICY), {"spec": spec})

    def annotate(self, key: str, value: str | None) -> None:
        self._last = None
        self.kube.merge_patch(policy_path(NS, POLICY), {"metadata": {"annotations": {key: value}}})

    def set_status(self, status: Mapping[str, Any]) -> None:
        self._last = None
        self.kube.patch_policy_status(NS, POLICY, status, resource_version=None)  # a hand edit

    def foreign_secret(self) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "stringData": {"x": "y"}}
        self.kube.create_secret(NS, body)

    def deps(self, **overrides: Any) -> engine.Deps:
        def new_id() -> str:
            self._ids += 1
            return f"r{self._ids}"

        values: dict[str, Any] = {
            "kube": self.kube,
            "resolve_store": StoreResolver(self.kube),
            "open_store": self.open_store or (lambda ref, resolved: self.store),
            "metrics": self.metrics,
            "settings": self.settings,
            "new_rotation_id": new_id,
            "checkpoint": self.checkpoints.append,
            "store_auth_failed": lambda ref: self.auth_failures.append(ref.owner),
        }
        values.update(overrides)
        return engine.Deps(**values)

    # --- act ---------------------------------------------------------------------------------
    def reconcile(
        self,
        *,
        failures: int = 0,
        resync: bool = True,
        spec: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | None = None,
        deliver: bool = True,
        **deps: Any,
    ) -> Run:
        """One reconcile of the policy as stored; ``spec``/``status`` replace what was read (to
        feed the engine what the CRD would refuse: an older CRD, a hand edit). ``deliver`` False
        (watching): the watches lag, the cache holds what it held."""
        if self.watching and deliver:
            self._deliver()
            obj = self._last or self.kube.get_policy(NS, POLICY)
        else:
            obj = self.kube.get_policy(NS, POLICY)
        assert obj is not None
        if spec is not None:
            obj = {**obj, "spec": spec}
        if status is not None:
            obj = {**obj, "status": status}
        before = self.status_writes()
        counted = Counter(self.requests())
        result = engine.reconcile(obj, self.deps(**deps), self.now, failures=failures, resync=resync)
        requests = Counter(self.requests())
        requests.subtract(counted)
        events = [(e.reason, e.message, e.warning) for e in result.events]
        writes = self.status_writes() - before
        if self.watching:
            self._last = None if result.stale else (result.written or obj)
        return Run(result.requeue_after, events, result.status, result.temporary, writes, +requests)

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def rotate_until(self, done: Callable[[Run], bool], *, limit: int = 60) -> list[Run]:
        """Reconcile until ``done``, moving the clock by each requeue (real time lets the rollout
        simulator act while a step waits)."""
        runs: list[Run] = []
        for _ in range(limit):
            run = self.reconcile()
            runs.append(run)
            if done(run):
                return runs
            wait = run.requeue or 0.0
            if wait:
                time.sleep(0.05)
            self.tick(wait)
        raise AssertionError(f"not done after {limit} reconciles; last status: {runs[-1].status}")

    def rotate_to_step(self, step: Step) -> list[Run]:
        return self.rotate_until(lambda run: run.step == step)

    def rotate_to_revoke(self) -> list[Run]:
        """To the revoke step, verifiedAt recorded and the grace period over: the next reconcile
        revokes. For a policy seeded with ``revoke=GRACE`` (see :data:`GRACE`)."""
        runs = self.rotate_to_step(Step.REVOKE)
        self.tick(GRACE_SECONDS)
        return runs

    def rotate_to_end(self) -> list[Run]:
        return self.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))

    # --- observe -----------------------------------------------------------------------------
    def status(self) -> RotationPolicyStatus:
        obj = self.kube.get_policy(NS, POLICY) or {}
        return RotationPolicyStatus.from_raw(obj.get("status"))

    def secret(self) -> dict[str, Any] | None:
        return self.kube.get_secret(NS, SECRET)

    def secret_value(self, key: str = "password") -> str | None:
        data = (self.secret() or {}).get("data") or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def store_value(self, version: str) -> str | None:
        found = self.store.versions.get(int(version))
        return found.value if found else None

    def deployment(self) -> dict[str, Any]:
        """The Deployment as the API server has it now (never the engine's watch cache)."""
        found = self.kube.request("GET", workload_path("Deployment", NS, DEPLOYMENT))
        assert found is not None
        return found

    def requests(self) -> Counter[tuple[str, str]]:
        assert isinstance(self.kube, CountingKube)
        return self.kube.requests

    def status_writes(self) -> int:
        assert isinstance(self.kube, CountingKube)
        return self.kube.status_writes
