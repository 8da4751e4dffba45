"""The only module that imports kopf: settings, one loop per watched object, probes.

Kopf supplies the process's frame (startup, cleanup, login, signals) and the liveness probe; it
has no resource handler. The loops are ours, every watch is a :class:`rotator.informer.Informer`
(Kopf's per-event handling was a sixth of the operator's CPU in a mass rotation, for objects
whose every status write comes back as an event), and the Events go out through
:mod:`rotator.kube_events` from the reconcile's thread. Every RotationPolicy gets one asyncio task that loops
`engine.reconcile -> post events -> sleep until requeue or a wake-up`: a rotation chains steps
back to back (requeue 0, followed on the same admission thread) and waits on rollouts at a short
poll, an idle policy only needs a look
at its due time or every `idle_resync` seconds. Reconciles run on the threads of
:class:`rotator.admission.Admission`: rotating policies first, new rotations in bounded waves.
Every RotationStore / ClusterRotationStore gets a
task that re-checks its health every `store_recheck` seconds (within seconds while its static
credential Secret is missing: creating it is the fix, and should take effect at once; at once,
then with backoff, when its status write met a newer resourceVersion).

Drift is found by watching, not by polling: the operator watches the Secrets it manages (label
``app.kubernetes.io/managed-by=rotator``, a server-side label selector: never all Secrets) and
the store objects into a :class:`rotator.kube.WatchCache` that the engine's reads answer from;
a change to a managed Secret wakes its policy's loop. The workloads rotator has restarted
(label ``rotator.dev/consumer=true``, set by the restart patch; never all workloads) are watched
the same way: restart and verify read them from the cache, and a rollout's progress wakes the
policies whose Secrets the workload's last restart recorded. An idle policy's loop otherwise sleeps
until its due time or a long, jittered safety resync (``Settings.resync``): the only look that
reads the store. Each reconcile starts from the policy object its predecessor's status write
returned (or the watch delivered), so a rotation does not re-read the policy between steps.

Why not Kopf daemons or timers: those put a finalizer on every object, so a policy, a store or
a whole namespace could not be deleted while the operator is down (issue 7). Nothing here needs
to act before an object goes away (the Secret is retained or garbage-collected by its owner
reference; the store keeps the credential), so the loops are started and stopped by watch events
and no finalizer is ever added. A spec or annotation change (``rotator.dev/force-rotate``) wakes
the object's loop at once; status-only changes (our own writes) do not.

With several replicas only the holder of the leader Lease reconciles (:mod:`rotator.leader`):
every loop of a standby waits until its process leads, and a leader that loses the Lease stops
at the next checkpoint of the step it is in (:class:`rotator.leader.LeadershipLost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from rotator import compact, engine
from rotator.admission import PARKED, Admission
from rotator.engine.store_health import HealthCheck, check_store
from rotator.informer import Deliver, Informer
from rotator.kube import (
    API_VERSION,
    KIND,
    PLURAL,
    JsonObject,
    Kube,
    connection_of,
    policy_collection,
    secret_collection,
    secret_path,
)
from rotator.kube_events import EventPoster
from rotator.kubeconfig import CredentialError, KubeConfigError
from rotator.leader import LeaderElector, LeadershipLost
from rotator.models import Event, PolicyRef, reasons, utcnow
from rotator.models.keys import CONSUMER, CONSUMER_LABEL, MANAGED_BY, MANAGED_BY_LABEL, POLICY_LABEL
from rotator.models.store import StoreRefKind
from rotator.tenancy.resolve import store_collection, store_path
from rotator.workloads.kinds import KINDS
from rotator.workloads.restarter import restarted_for

log = logging.getLogger("rotator.handlers")
KOPF_PREFIX = "kopf.rotator.dev"
MANAGED_SECRETS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
CONSUMERS = f"{CONSUMER_LABEL}={CONSUMER}"
STORES = {
    StoreRefKind.ROTATION_STORE: "rotationstores",
    StoreRefKind.CLUSTER_ROTATION_STORE: "clusterrotationstores",
}

Key = tuple[str, str, str]  # (plural, namespace, name)


@dataclass
class Runtime:
    """Process-wide state shared by the handlers through Kopf's memo."""

    deps: engine.Deps
    store_health: HealthCheck
    allowed_addresses: Collection[str] = ()
    clock: Callable[[], datetime] = utcnow
    #: Seconds between health checks of a store (its spec changing triggers one at once).
    store_recheck: float = 60.0
    tasks: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    #: (generation, annotations) last seen per object: only a change of those wakes its loop.
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    #: The object a watch event delivered with such a change: the loop's next reconcile starts
    #: from it instead of reading the object again.
    delivered: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: None: leader election is off and this process always reconciles.
    leader: LeaderElector | None = None
    #: The namespaces watched (empty: the whole cluster); set by :func:`run_operator`.
    namespaces: Sequence[str] = ()
    #: Every watch (:func:`start_watches`).
    informers: list[Informer] = field(default_factory=list)
    #: RBAC lets rotator list and watch workloads (``rotator.cli.may_watch_workloads``): the
    #: workloads it restarted are watched and cached; else restart and verify read them.
    watch_workloads: bool = True
    #: Threads for reconciles, rotating policies first, rotations started in bounded waves.
    admission: Admission = field(init=False)
    #: Events go out through our own client, from the thread that decided them.
    events: EventPoster = field(init=False)
    _leading: asyncio.Event | None = field(default=None, init=False)
    _term_seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        settings = self.deps.settings
        self.admission = Admission(settings.reconcile_workers, settings.max_rotating)
        self.events = EventPoster(self.deps.kube)

    @property
    def kube(self) -> Kube:
        return self.deps.kube

    def leading(self) -> bool:
        return self.leader is None or self.leader.leading()

    async def until_leading(self) -> None:
        """Wait while another replica leads: woken when this one acquires the Lease."""
        assert self.leader is not None, "only asked when leadership is in doubt"
        if self._leading is None:
            leading = self._leading = asyncio.Event()
            loop = asyncio.get_running_loop()
            self.leader.on_leading(lambda: loop.call_soon_threadsafe(leading.set))
        self._leading.clear()  # then look: an acquisition in between has set it again
        if not self.leading():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leading.wait(), timeout=self.leader.config.lease_duration)

    def note_reconcile(self, namespace: str, name: str) -> None:
        """Log the first reconcile of each leadership term: where a takeover ends."""
        if self.leader is not None and self.leader.term != self._term_seen:
            self._term_seen = self.leader.term
            log.info("leading: first reconcile as leader (term %d): %s/%s", self._term_seen, namespace, name)

    def waker(self, key: Key) -> asyncio.Event:
        return self.wakers.setdefault(key, asyncio.Event())


def _runtime(memo: Any) -> Runtime:
    runtime = memo.get("runtime")
    assert isinstance(runtime, Runtime), "run_operator() puts the Runtime into the memo"
    return runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Events are posted by rotator.kube_events, not from Kopf's loggers or poster.
    settings.posting.enabled = False
    # Kopf watches nothing (every watch is an informer, start_watches): no CRDs or namespaces to
    # observe for new resources either.
    settings.scanning.disabled = True
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10


@kopf.on.login()
async def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """Kopf connects with the same kubeconfig or in-cluster identity as our own client.

    Kopf calls this at start and again when its credential was refused (a 401) or reached its
    ``expiration`` (an exec plugin's): so the token file is re-read or the plugin re-run first,
    and Kopf gets the credential as it is now, not the one it just lost."""
    try:
        conn = await asyncio.to_thread(connection_of, _runtime(memo).kube.api_client, renew=True)
    except KubeConfigError as exc:
        raise kopf.PermanentError(str(exc)) from None
    except CredentialError as exc:  # an exec plugin failed: it may work on the next try
        raise kopf.TemporaryError(str(exc), delay=10) from None
    return kopf.ConnectionInfo(
        server=conn.server,
        scheme="Bearer" if conn.token else None,
        token=conn.token,
        ca_path=conn.ca_path,
        certificate_path=conn.certificate_path,
        private_key_path=conn.private_key_path,
        insecure=conn.insecure,
        expiration=conn.expiration,
    )


@kopf.on.startup()
async def start_watches(memo: Any, **_: Any) -> None:
    """Every watch is a :class:`rotator.informer.Informer` (a thread per collection and watched
    namespace, or one for the cluster), not Kopf's: each change costs the event loop one call
    instead of Kopf's per-object handling. RotationPolicies and the stores start, wake and stop
    their loops; the Secrets rotator manages and the workloads it restarted (both selected by
    label by the API server: never all Secrets, never all workloads) go into the watch cache on
    the informer's thread and wake the policies they concern. Workloads are watched only where
    RBAC lets rotator list and watch them (``Runtime.watch_workloads``); ClusterRotationStores
    cluster-wide, whatever the namespaces."""
    runtime = _runtime(memo)
    loop = asyncio.get_running_loop()

    def policy_changed(kind: str, obj: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(_on_policy_event, runtime, kind, obj)

    def secret_changed(kind: str, obj: dict[str, Any]) -> None:
        """On the informer's thread (the cache is thread-safe); only the wake-up is the loop's.
        An event that only echoes what the cache holds (our own write's answer) wakes nothing."""
        if _cached(runtime, kind, obj):
            loop.call_soon_threadsafe(_wake_policy_of, runtime, obj)

    def consumer_changed(kind: str, obj: dict[str, Any]) -> None:
        """A workload rotator restarted changed (its rollout progressed): into the cache, and the
        policies whose Secrets its last restart recorded are woken, so verify looks as soon as a
        rollout completes instead of at the next poll."""
        if not _cached(runtime, kind, obj):
            return
        for secret in _restarted_secrets(runtime, obj):
            loop.call_soon_threadsafe(_wake_policy_of, runtime, secret)

    def store_changed(store_kind: StoreRefKind) -> Deliver:
        def changed(kind: str, obj: dict[str, Any]) -> None:
            _cached(runtime, kind, obj)
            loop.call_soon_threadsafe(_on_store_event, runtime, store_kind, kind, obj)

        return changed

    def watch(path: str, deliver: Deliver, name: str, label_selector: str | None = None) -> Informer:
        return Informer(
            runtime.kube,
            path,
            deliver,
            name=name,
            label_selector=label_selector,
            on_health=runtime.deps.metrics.watch_health,
        )

    cluster_stores = StoreRefKind.CLUSTER_ROTATION_STORE
    informers = [
        watch(store_collection(cluster_stores, None), store_changed(cluster_stores), "clusterrotationstores")
    ]
    scopes: list[str | None] = list(runtime.namespaces) or [None]
    for namespace in scopes:
        where = namespace or "*"
        stores = StoreRefKind.ROTATION_STORE
        informers += [
            watch(policy_collection(namespace), policy_changed, f"rotationpolicies@{where}"),
            watch(secret_collection(namespace), secret_changed, f"managed secrets@{where}", MANAGED_SECRETS),
            watch(store_collection(stores, namespace), store_changed(stores), f"rotationstores@{where}"),
        ]
        if runtime.watch_workloads:
            informers += [
                watch(info.collection(namespace), consumer_changed, f"{info.plural}@{where}", CONSUMERS)
                for info in KINDS.values()
            ]
    for informer in informers:
        runtime.informers.append(informer)
        informer.start()


def _on_policy_event(runtime: Runtime, kind: str, obj: dict[str, Any]) -> None:
    """On the event loop: the informer hands over its object (freshly decoded, ours to keep)."""
    _track(runtime, PLURAL, kind, obj, lambda key: _policy_loop(runtime, key))


def _on_store_event(runtime: Runtime, store_kind: StoreRefKind, kind: str, obj: dict[str, Any]) -> None:
    """On the event loop, as a policy's: a store's health loop started, woken or stopped."""
    loop = functools.partial(_store_loop, runtime, store_kind)
    _track(runtime, STORES[store_kind], kind, obj, loop)


def _wake_policy_of(runtime: Runtime, secret: Mapping[str, Any]) -> None:
    """Wake the loop of the policy a managed Secret belongs to (its ``rotator.dev/policy``
    label), if that loop runs here."""
    meta = secret.get("metadata") or {}
    policy = str((meta.get("labels") or {}).get(POLICY_LABEL) or "")
    key: Key = (PLURAL, str(meta.get("namespace") or ""), policy)
    if policy and key in runtime.tasks:
        runtime.waker(key).set()


def _restarted_secrets(runtime: Runtime, workload: Mapping[str, Any]) -> list[JsonObject]:
    """The cached managed Secrets a workload's last restart by rotator recorded."""
    cache = runtime.kube.cache
    if cache is None:
        return []
    namespace = str((workload.get("metadata") or {}).get("namespace") or "")
    found = []
    for secret_name in restarted_for(workload):
        known, secret = cache.lookup(secret_path(namespace, secret_name))
        if known and secret is not None:
            found.append(secret)
    return found


def _cached(runtime: Runtime, kind: str, body: Mapping[str, Any]) -> bool:
    """Put a watched object into the cache (``kind``: the watch event's type); True when it is news."""
    cache = runtime.kube.cache
    if cache is None:
        return True
    if kind == "DELETED":
        cache.gone(body)
        return True
    return cache.put(body)  # put keeps a copy of its own


def _track(
    runtime: Runtime,
    plural: str,
    kind: str,
    body: JsonObject,
    loop: Callable[[Key], Coroutine[Any, Any, None]],
) -> None:
    """Start, wake or stop the object's loop from a watch event (``body``: the informer's
    freshly decoded object, ours to keep as it is)."""
    meta = body.get("metadata") or {}
    key: Key = (plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    if kind == "DELETED" or meta.get("deletionTimestamp"):
        _stop(runtime, key)
        return
    task = runtime.tasks.get(key)
    if task is None or task.done():
        runtime.seen[key] = _essence(meta)
        runtime.delivered[key] = body
        runtime.tasks[key] = asyncio.create_task(loop(key), name=f"rotator:{'/'.join(key)}")
        return
    essence = _essence(meta)
    if runtime.seen.get(key) != essence:
        runtime.seen[key] = essence
        runtime.delivered[key] = body
        runtime.waker(key).set()


def _essence(meta: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a user changes (spec -> generation, annotations such as force-rotate); not status."""
    annotations = meta.get("annotations") or {}
    ours = tuple(sorted((k, v) for k, v in annotations.items() if not k.startswith(KOPF_PREFIX)))
    return (meta.get("generation"), ours)


def _stop(runtime: Runtime, key: Key) -> None:
    task = runtime.tasks.pop(key, None)
    if task is not None:
        task.cancel()
    runtime.wakers.pop(key, None)
    runtime.seen.pop(key, None)
    runtime.delivered.pop(key, None)
    runtime.admission.forget(key)
    if key[0] == PLURAL:
        runtime.deps.metrics.forget_policy(key[1], key[2])


@kopf.on.cleanup()
async def stop_loops(memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    informers, runtime.informers = runtime.informers, []
    await asyncio.gather(*(asyncio.to_thread(informer.stop) for informer in informers))
    tasks = list(runtime.tasks.values())
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    runtime.tasks.clear()
    runtime.admission.close()


async def _post(runtime: Runtime, obj: Mapping[str, Any], events: list[Event]) -> None:
    """From the event loop: off it, as every request."""
    if events:
        await asyncio.to_thread(runtime.events.post, obj, events)


async def _policy_loop(runtime: Runtime, key: Key) -> None:
    _, namespace, name = key
    wake = runtime.waker(key)
    # Temporary results in a row: the engine's backoff for an idle policy grows with it (a
    # rotating policy counts in status.rotation.attempt). The engine owns the delays.
    failures = 0
    crashes = 0
    # The object the next reconcile starts from: what the watch delivered, else what the last
    # status write returned (None: read it). A stale one costs a 409 and a read, never a wrong
    # write (every status write carries the resourceVersion it was computed from).
    obj: dict[str, Any] | None = None
    # A full look (store included) on the first reconcile and whenever the wait ran out rather
    # than being cut short by a watch event; a reconcile woken by a watch is a light one.
    resync = True
    parked: bytes | None = None  # obj, compact, while the loop sleeps long (rotator.compact)
    # obj is what a finished reconcile looked at or wrote: its status reads and its spec was
    # judged, so the admission check below need not validate them again (a delivered or fetched
    # object it must).
    known = False
    while True:
        if parked is not None:
            obj, parked = compact.unpack(parked), None
        wake.clear()
        if not runtime.leading():
            await runtime.until_leading()
            obj, resync = None, True  # another leader may have written meanwhile
            continue
        requeue: float | None
        try:
            if (delivered := runtime.delivered.pop(key, None)) is not None:
                obj, known = delivered, False
            if obj is None:
                obj, known = await asyncio.to_thread(runtime.kube.get_policy, namespace, name), False
            if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
                return
            runtime.note_reconcile(namespace, name)
            # A look that can only name a bad spec or status needs no rotation slot either.
            rotating = bool((obj.get("status") or {}).get("rotation"))
            first = rotating or (not known and engine.cannot_start_rotation(obj))
            result = await runtime.admission.run(
                key, first, _reconcile_and_post, runtime, obj, failures, resync
            )
            obj = None if result.stale else (result.written or obj)
            known = obj is not None
            requeue = result.requeue_after
            failures = failures + 1 if result.temporary else 0
            crashes = 0
            runtime.admission.settle(key, result.status.rotation is not None, requeue)
            del result  # its status model is not needed while the loop sleeps
        except LeadershipLost:
            runtime.admission.settle(key, rotating=False, requeue=None)
            obj, resync = None, True
            continue  # deposed mid-step: nothing more was written; wait as a standby
        except Exception as exc:
            runtime.admission.settle(key, rotating=False, requeue=None)  # back in line by its object
            obj = None
            # Only when even the status write failed (the API server unreachable, say).
            requeue = engine.backoff(PolicyRef(namespace, name, ""), crashes, runtime.deps.settings)
            crashes += 1
            log.warning(
                "reconcile of %s/%s failed (%s); retrying in %.0fs",
                namespace,
                name,
                type(exc).__name__,
                requeue,
                exc_info=True,
            )
            if crashes == 1:  # one Event per streak of failures; the logs have every retry
                # Only the type: an unexpected exception's text may quote what it handled.
                ref = {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "metadata": {"name": name, "namespace": namespace},
                }
                await _post(
                    runtime,
                    ref,
                    [Event(reasons.RECONCILE_ERROR, f"{type(exc).__name__}; see the logs", True)],
                )
        resync = False
        if requeue is not None and requeue <= 0:
            continue
        if obj is not None and (requeue is None or requeue > PARKED):
            parked, obj = compact.pack(obj), None
        try:
            await asyncio.wait_for(wake.wait(), timeout=requeue)
        except TimeoutError:
            resync = True


#: Reconciles one admission may run back to back (requeue 0: the next step at once).
CHAIN_LIMIT = 8


def _reconcile_and_post(
    runtime: Runtime, obj: dict[str, Any], failures: int, resync: bool
) -> engine.Reconciled:
    """:func:`_reconcile`, then its Events posted from the same thread."""
    result = _reconcile(runtime, obj, failures, resync)
    runtime.events.post(obj, result.events)
    return result


def _reconcile(runtime: Runtime, obj: dict[str, Any], failures: int, resync: bool) -> engine.Reconciled:
    """On an admission thread: the clock is read when each reconcile runs, not when it queued.

    A result asking for the next look at once (requeue 0: the step after a status write) is
    followed on this thread, from the object that write returned, instead of going back through
    the event loop and the admission queue: a rotation's steps run back to back. A watch event
    meanwhile (a force, a spec edit) changed the resourceVersion, so the next status write meets
    a 409 and the loop reads afresh (``stale``), as it would have anyway. The Events of all of
    them are returned together, and ``written`` is the newest object any of them wrote: the
    loop's next reconcile must never start from the object this chain began with (its status
    is behind; a step run from it would repeat side effects before its write met the 409)."""
    events: list[Event] = []
    newest: dict[str, Any] | None = None
    result: engine.Reconciled | None = None
    for _ in range(CHAIN_LIMIT):
        try:
            following = engine.reconcile(obj, runtime.deps, runtime.clock(), failures=failures, resync=resync)
        except Exception:
            if result is None:
                raise
            # Not lost: what the chain did so far goes back with its Events (requeue 0), and
            # the loop runs this reconcile again at once, where its failure is handled.
            break
        result = following
        events.extend(result.events)
        newest = result.written or newest
        if result.requeue_after != 0 or result.written is None or result.stale or not runtime.leading():
            break
        obj, failures, resync = result.written, 0, False
    assert result is not None, "the first reconcile either returned or raised"
    return dataclasses.replace(result, events=events, written=None if result.stale else newest)


async def _store_loop(runtime: Runtime, kind: StoreRefKind, key: Key) -> None:
    _, namespace, name = key
    wake = runtime.waker(key)
    conflicts = 0  # checks in a row whose status write met a newer resourceVersion
    while True:
        wake.clear()
        if not runtime.leading():  # one writer of store status too
            await runtime.until_leading()
            continue
        try:
            obj = await asyncio.to_thread(runtime.kube.get, store_path(kind, namespace, name))
            if obj is None:
                return
            checked = await asyncio.to_thread(
                check_store,
                obj,
                kind,
                runtime.kube,
                runtime.store_health,
                runtime.clock(),
                runtime.allowed_addresses,
                conflicts=conflicts,
                settings=runtime.deps.settings,
            )
            if checked.stale:  # decided on a stale read: nothing written, nothing to post
                conflicts += 1
                recheck = checked.retry_after
            else:
                conflicts = 0
                await _post(runtime, obj, checked.events)
                recheck = runtime.store_recheck
                if checked.awaiting_secret:
                    recheck = min(recheck, runtime.deps.settings.credential_secret_recheck)
        except Exception:
            log.warning("health check of %s %s failed", kind, "/".join(key[1:]), exc_info=True)
            recheck = runtime.store_recheck
        if recheck <= 0:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=recheck)


def run_operator(
    runtime: Runtime,
    namespaces: list[str],
    liveness_port: int | None,
    stop_flag: Any | None = None,
    liveness_address: str = "0.0.0.0",  # noqa: S104 - a probe must reach it from the kubelet
) -> None:
    """Run Kopf until stopped; blocks. Kopf runs standalone (no peering objects): which replica
    reconciles is decided by ``runtime.leader``'s Lease, not by Kopf."""
    liveness = f"http://{liveness_address}:{liveness_port}/healthz" if liveness_port else None
    runtime.namespaces = list(namespaces)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(runtime=runtime),
        stop_flag=stop_flag,
    )
