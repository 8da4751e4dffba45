"""The only Kubernetes API wrapper.

A thin JSON-over-REST layer on :mod:`rotator.kube_connection` (kubeconfig or in-cluster
settings, parsed by :mod:`rotator.kubeconfig`; credentials kept current; one :mod:`rotator.http1` pool):
every object comes back as a plain dict, exactly as the API sent it, so the pure functions above
(rollout health, discovery) work on real-shaped data. Not the official ``kubernetes`` client:
importing it costs ~35 MiB of RSS and each of its requests 1-2 ms of CPU (issue 11). It is
synchronous; callers run it off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rotator.http1 import HttpFailure, Stream
from rotator.json_copy import clone
from rotator.kube_connection import KubeConnection, Response, load_settings
from rotator.kubeconfig import CredentialError, KubeConfigError
from rotator.models.keys import CONSUMER, CONSUMER_LABEL, DOMAIN, MANAGED_BY, MANAGED_BY_LABEL
from rotator.models.spec import WorkloadKind
from rotator.policy.ratelimit import MAX_RETRY_AFTER, TokenBucket, retry_after_seconds

GROUP: Final = DOMAIN
VERSION: Final = "v1alpha1"
PLURAL: Final = "rotationpolicies"
KIND: Final = "RotationPolicy"
API_VERSION: Final = f"{GROUP}/{VERSION}"

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"

JsonObject = dict[str, Any]

_DRY_RUN: Final = {"dryRun": "All"}

_TRANSPORT_RETRIES: Final = 3
"""More tries of a connection that could not be established (urllib3's default, which this
client had before). A 429's Retry-After is ``Kube``'s to honour, counted."""


class KubeError(Exception):
    """An API call failed; the message holds the API's reason, never a request body."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason


class KubeConflict(KubeError):
    """409: a stale resourceVersion or an existing object; re-read and retry."""


class KubeUnavailable(KubeError):
    """The API server could not be reached or answered 5xx/429: temporary."""


class KubeForbidden(KubeError):
    """403 from the authorizer: the operator's RBAC lacks a verb. The message names who, which
    verb, which resource and where, so ``Ready=False KubeError`` tells the admin what to grant."""

    def __init__(
        self, reason: str, message: str, *, user: str, verb: str, resource: str, namespace: str
    ) -> None:
        where = f'in namespace "{namespace}"' if namespace else "cluster-wide"
        summary = (
            f"{user} cannot {verb} {resource} {where} (grant it in rotator's ClusterRole or Role); "
            f"the API server said: {message}"
        )
        super().__init__(403, reason, summary)
        self.user = user
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


# kube-apiserver's RBAC refusal: 'secrets "x" is forbidden: User "system:serviceaccount:ns:sa"
# cannot update resource "secrets" in API group "" in the namespace "shop"'.
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]+)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)


POOL_SIZE: Final = 32
"""Connections kept to the API server: above ``Settings.reconcile_workers`` (16) plus the
store loops and the leader's renewals."""


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> KubeConnection:
    """Build one connection per process: the kubeconfig when one is given, else in-cluster when
    a service account is mounted, else ``$KUBECONFIG`` or ``~/.kube/config``. A setting rotator
    cannot honour is a ``KubeConfigError`` naming the kubeconfig field."""
    return KubeConnection(load_settings(kubeconfig, context), maxsize=POOL_SIZE, retries=_TRANSPORT_RETRIES)


def policy_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def policy_collection(namespace: str | None) -> str:
    """RotationPolicies of one namespace, or of the whole cluster (None)."""
    return policy_path(namespace) if namespace else f"/apis/{GROUP}/{VERSION}/{PLURAL}"


def secret_collection(namespace: str | None) -> str:
    """Secrets of one namespace, or of the whole cluster (None)."""
    return secret_path(namespace) if namespace else "/api/v1/secrets"


def secret_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{base}/{name}" if name else base


def lease_path(namespace: str, name: str = "") -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


OnKubeRequest = Callable[[str, str], None]
"""``on_request(verb, resource)``: one call per API request, for ``rotator_kube_requests_total``."""


def no_count(verb: str, resource: str) -> None:
    """Default ``on_request``: count nothing."""


_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_labels(method: str, path: str, query: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The bounded labels of one request: the Kubernetes verb and the resource plural (with its
    subresource, ``rotationpolicies/status``); never a name or a namespace.

    ``/api/v1/namespaces/shop/secrets/x`` -> ``("get", "secrets")``; a GET of a collection is
    ``list`` (``watch`` with ``watch=true``).
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # drop api/v1 or apis/<group>/<version>
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource: namespaces/<ns>/<plural>/...
    resource = rest[0] if rest else "unknown"
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if method != "GET":
        return _VERBS.get(method, method.lower()), resource
    if len(rest) >= 2:
        return "get", resource
    return ("watch" if (query or {}).get("watch") in ("true", "1") else "list"), resource


def object_path(obj: Mapping[str, Any]) -> str | None:
    """The API path of a Secret, RotationPolicy or store object as a watch delivers it."""
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    plural = {"Secret": "secrets"}.get(kind) or f"{kind.lower()}s"
    if not name or not kind:
        return None
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}/{name}" if namespace else f"{base}/{plural}/{name}"


WATCHED_STORE_KINDS: Final = frozenset({"RotationStore", "ClusterRotationStore"})
WATCHED_WORKLOAD_KINDS: Final = frozenset(WorkloadKind)


def watched_object(obj: Mapping[str, Any], *, workloads: bool = True) -> bool:
    """What the operator's watches cover: the Secrets it manages (label
    ``app.kubernetes.io/managed-by=rotator``; never all Secrets), the workloads it has restarted
    (label ``rotator.dev/consumer=true``; never all workloads) and the store objects.

    ``workloads`` False: rotator may not watch workloads (an install whose RBAC predates the
    watch), so none is cached: a cached workload no event updates would stall verify."""
    kind = obj.get("kind")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if kind == "Secret":
        return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY)
    if kind in WATCHED_WORKLOAD_KINDS:
        return workloads and labels.get(CONSUMER_LABEL) == CONSUMER
    return kind in WATCHED_STORE_KINDS


def _revision(version: object) -> int | None:
    """A resourceVersion as a number, where it is one (kube-apiserver's are etcd revisions;
    the API calls them opaque, so anything else is never compared)."""
    return int(version) if isinstance(version, str) and version.isdigit() else None


class WatchCache:
    """What the operator's watches last said about the objects they cover, by API path: the
    informer cache of controller-runtime, reduced to what rotator reads (its managed Secrets and
    the workloads it restarted, by label; the store objects). ``Kube.get`` answers from it, so a
    reconcile reads those objects at no cost; anything the watches do not cover (a foreign
    Secret, a workload never restarted) is a GET.

    ``put`` (an ADDED/MODIFIED event) and ``written`` (the API's answer to our own write of a
    watched object) fill it; ``gone`` (a DELETED event) and ``forget`` (a write proved the entry
    stale: 409, 404) drop an entry, so the next read asks the API. Thread-safe: the watches
    (``rotator.informer``) feed it on their threads while reconciles read it in worker threads.

    A watch lags our own writes: an event sent before the write may arrive after its answer,
    and would put the older object back (the next reconcile then acts on it: a write that
    meets a 409, a drift that is not one). So ``written`` leaves a floor, the resourceVersion
    it wrote, and ``put`` drops an event below it until the watch has caught up (an event at
    or above it). resourceVersions are compared as numbers only where both are numbers (etcd's
    revisions: kube-apiserver's), and the floor holds ``echo_wait`` seconds at most, so a
    server whose versions ever went back (an etcd restored from backup) is believed again soon.
    """

    def __init__(
        self,
        watched: Callable[[Mapping[str, Any]], bool],
        *,
        clock: Callable[[], float] = time.monotonic,
        echo_wait: float = 60.0,
    ) -> None:
        #: Which objects a watch covers (``put`` of anything else is ignored: no event would
        #: ever update it).
        self.watched = watched
        self._objects: dict[str, JsonObject] = {}
        self._floors: dict[str, tuple[int, float]] = {}  # path: (our write's version, until)
        self._clock = clock
        self._echo_wait = echo_wait
        self._lock = threading.Lock()

    def put(self, obj: Mapping[str, Any]) -> bool:
        """A watch event's object; True when it is news (absent before, or another
        resourceVersion). An event older than our own write of the object is no news: dropped.

        An object that no longer qualifies (its label removed) is dropped, not kept stale: no
        watch event would ever update it again; the next read asks the API."""
        return self._keep(obj, written=False)

    def written(self, obj: Mapping[str, Any]) -> None:
        """The API's answer to our own write: the newest state, and the floor for the watch."""
        self._keep(obj, written=True)

    def _keep(self, obj: Mapping[str, Any], *, written: bool) -> bool:
        path = object_path(obj)
        if path is None:
            return False
        if not self.watched(obj):
            with self._lock:
                self._floors.pop(path, None)
                return self._objects.pop(path, None) is not None
        version = (obj.get("metadata") or {}).get("resourceVersion")
        number = _revision(version)
        kept = clone(dict(obj))
        # Often the largest part of an object and never read by rotator (a write that omits it
        # leaves the server's copy as it is), so the cache does not pay for it.
        kept.get("metadata", {}).pop("managedFields", None)
        # One section: a write's floor set between an event's check and its store would let
        # that older event overwrite the write.
        with self._lock:
            floor = self._floors.get(path)
            if floor is not None and not written:
                if number is not None and number < floor[0] and self._clock() < floor[1]:
                    return False
                del self._floors[path]
            if written and number is not None:
                self._floors[path] = (number, self._clock() + self._echo_wait)
            before = self._objects.get(path)
            self._objects[path] = kept
        return before is None or (before.get("metadata") or {}).get("resourceVersion") != version

    def gone(self, obj: Mapping[str, Any]) -> None:
        """A DELETED event: the object was deleted, or it left a label-selected watch (its label
        removed: kube-apiserver reports that as DELETED too, showing the object as it was, label
        and all). The two cannot be told apart, so the entry is dropped either way: the next read
        asks the API (404, or the object as it now is), never a cached "absent" that may be false."""
        path = object_path(obj)
        if path is not None:
            self.forget(path)

    def forget(self, path: str) -> None:
        with self._lock:
            self._objects.pop(path, None)
            self._floors.pop(path, None)

    def lookup(self, path: str) -> tuple[bool, JsonObject | None]:
        """(known, object): known False means ask the API."""
        with self._lock:
            if path not in self._objects:
                return False, None
            found = self._objects[path]
        return True, clone(found)


class Kube:
    """Typed verbs over raw paths; errors mapped to three classes the engine can act on.

    Every request is counted through ``on_request(verb, resource)`` (the operator wires it to
    ``rotator_kube_requests_total``), a failed one too: it cost the API server all the same.
    With a ``cache`` (:class:`WatchCache`), ``get`` answers from it where a watch covers the
    object, and the answers to our own writes go into it.

    With a ``limiter`` (:class:`rotator.policy.ratelimit.TokenBucket`, ``--kube-qps`` and
    ``--kube-burst``) every request waits for its token first. A 429 that says Retry-After
    (API Priority and Fairness does) is retried after that delay, up to ``retries`` times (each
    attempt a counted request); without Retry-After, or past the retries, it is KubeUnavailable
    and the engine backs off.
    """

    def __init__(
        self,
        api_client: KubeConnection,
        request_timeout: float = 10.0,
        on_request: OnKubeRequest = no_count,
        cache: WatchCache | None = None,
        *,
        limiter: TokenBucket | None = None,
        retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api_client
        self._timeout = request_timeout
        self._on_request = on_request
        self.cache = cache
        self.limiter = limiter
        self._retries = retries
        self._clock = clock
        self._sleep = sleep

    @property
    def api_client(self) -> KubeConnection:
        return self._api

    @property
    def on_request(self) -> OnKubeRequest:
        return self._on_request

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        *,
        rate_limited: bool = True,
    ) -> JsonObject:
        """``rate_limited=False``: no token taken from the bucket (an Event: auxiliary, and
        bounded by the rotations whose requests do take one); counted all the same."""
        attempt, renewed = 0, False
        while True:
            response = self._send(method, path, body, content_type, query, rate_limited)
            if 200 <= response.status <= 299:
                try:
                    return json.loads(response.data) if response.data else {}
                except ValueError as exc:
                    # A body cut short: worth a retry, not our bug.
                    raise KubeUnavailable(0, "Unreachable", type(exc).__name__) from None
            if response.status == 401 and not renewed and self._renew_credentials():
                renewed = True  # a rotated token or a re-run exec plugin: once more with it
                continue
            delay = _retry_after(response) if attempt < self._retries else None
            if delay is None:
                raise _map_error(response)
            attempt += 1
            self._sleep(delay)

    def _renew_credentials(self) -> bool:
        try:
            return self._api.renew_credentials()
        except CredentialError:
            return False  # the 401 stands

    def _send(
        self,
        method: str,
        path: str,
        body: object | None,
        content_type: str,
        query: Mapping[str, str] | None,
        rate_limited: bool = True,
    ) -> Response:
        """One request (after its token): the answer, whatever its status."""
        if rate_limited and self.limiter is not None and (wait := self.limiter.reserve(self._clock())) > 0:
            self._sleep(wait)
        self._on_request(*request_labels(method, path, query))
        payload = json.dumps(body).encode() if body is not None else None
        with _unreachable_is_unavailable():
            return self._api.request(
                method, path, query=query, body=payload, content_type=content_type, timeout=self._timeout
            )

    def watch(
        self,
        path: str,
        query: Mapping[str, str],
        timeout: float,
        *,
        streams: set[Stream],
        on_open: Callable[[], None] | None = None,
    ) -> Iterator[JsonObject]:
        """The watch events of a collection (``query`` holds ``resourceVersion`` and the like;
        ``watch=true`` is added), each decoded, until the server ends the stream. Counted as one
        request; not rate-limited (one long request, as client-go's watches are not). Raises
        KubeError for an answer other than 200 (a 401 once more with renewed credentials) and
        KubeUnavailable when the stream breaks or stays silent past ``timeout`` seconds.

        While it is read, the stream is in ``streams`` (the caller's set), where another thread
        may close it to end the watch at once: its reader sees KubeUnavailable. ``on_open`` is
        called once the server accepted the watch, before any event (a quiet collection sends
        none for minutes)."""
        query = {**query, "watch": "true"}
        renewed = False
        while True:
            self._on_request(*request_labels("GET", path, query))
            with _unreachable_is_unavailable():
                stream = self._api.stream(path, query=query, timeout=timeout)
            if stream.status == 200:
                break
            try:
                data = stream.read_all()
            except HttpFailure:
                data = b""
            finally:
                stream.close()
            if stream.status == 401 and not renewed and self._renew_credentials():
                renewed = True
                continue
            raise _map_error(Response(stream.status, stream.reason, stream.headers, data))
        streams.add(stream)
        if on_open is not None:
            on_open()
        try:
            with _unreachable_is_unavailable():
                for line in stream.lines():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise KubeUnavailable(0, "Unreachable", "a watch event is not JSON") from None
                    if isinstance(event, dict):
                        yield event
        finally:
            streams.discard(stream)
            stream.close()

    def get(self, path: str) -> JsonObject | None:
        if self.cache is not None:
            known, found = self.cache.lookup(path)
            if known:
                return found
        try:
            return self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        """``dry_run``: authorized, admitted and validated by the server, never stored (nor cached)."""
        if dry_run:
            return self.request("POST", path, dict(body), query=_DRY_RUN)
        name = (body.get("metadata") or {}).get("name")
        return self._written(f"{path}/{name}", lambda: self.request("POST", path, dict(body)))

    def replace(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        """PUT carrying the resourceVersion it read: a concurrent writer makes this a KubeConflict."""
        if dry_run:
            return self.request("PUT", path, dict(body), query=_DRY_RUN)
        return self._written(path, lambda: self.request("PUT", path, dict(body)))

    def _written(self, path: str, write: Callable[[], JsonObject]) -> JsonObject:
        """A write of an object the cache may hold: its answer is the newest state (an earlier
        read was stale when it fails with 409/404, so the next read asks the API)."""
        try:
            written = write()
        except KubeError as exc:
            if self.cache is not None and exc.status in (404, 409):
                self.cache.forget(path)
            raise
        if self.cache is not None:
            self.cache.written(written)
        return written

    def merge_patch(self, path: str, patch: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        if dry_run:
            return self.request("PATCH", path, dict(patch), MERGE_PATCH, query=_DRY_RUN)
        # The answer into the cache too: a restart's patch is what verify, chained right after
        # it, must see (a stale cached workload without it would only make verify wait).
        return self._written(path, lambda: self.request("PATCH", path, dict(patch), MERGE_PATCH))

    def list(self, path: str, label_selector: str | None = None) -> list[JsonObject]:
        query = {"labelSelector": label_selector} if label_selector else None
        items = self.request("GET", path, query=query).get("items", [])
        return list(items)

    def allowed(self, verb: str, group: str, resource: str, namespace: str | None = None) -> bool:
        """Whether rotator's own identity may ``verb`` the resource (all namespaces when None):
        a SelfSubjectAccessReview, which every authenticated identity may create."""
        attributes = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        return bool((answer.get("status") or {}).get("allowed"))

    # --- RotationPolicy --------------------------------------------------------------------
    def get_policy(self, namespace: str, name: str) -> JsonObject | None:
        return self.get(policy_path(namespace, name))

    def patch_policy_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> JsonObject:
        return self.patch_status(policy_path(namespace, name), status, resource_version=resource_version)

    def patch_status(
        self, path: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> JsonObject:
        """Merge-patch the ``/status`` subresource of the object at ``path``. ``resource_version``
        is the version the status was computed from: a write by anyone since (another replica, a
        human, Kopf's annotations) makes this a KubeConflict instead of a blind overwrite. None
        only where nothing was read first (a test's hand edit). The answer is the object as
        stored, so a watched object's cache entry moves with it (and is dropped on a 409)."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._written(path, lambda: self.merge_patch(path + "/status", body))

    # --- Leases (leader election) ----------------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> JsonObject | None:
        return self.get(lease_path(namespace, name))

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> JsonObject:
        """409 (KubeConflict) when another replica created it first."""
        return self.create(lease_path(namespace), body)

    def replace_lease(self, namespace: str, name: str, body: Mapping[str, Any]) -> JsonObject:
        """PUT with the resourceVersion read: 409 (KubeConflict) when another replica wrote first."""
        return self.replace(lease_path(namespace, name), body)

    # --- Secrets ---------------------------------------------------------------------------
    def get_secret(self, namespace: str, name: str) -> JsonObject | None:
        return self.get(secret_path(namespace, name))

    def create_secret(self, namespace: str, body: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        return self.create(secret_path(namespace), body, dry_run=dry_run)

    def replace_secret(
        self, namespace: str, name: str, body: Mapping[str, Any], *, dry_run: bool = False
    ) -> JsonObject:
        return self.replace(secret_path(namespace, name), body, dry_run=dry_run)


def _retry_after(response: Response) -> float | None:
    """The wait a 429 asks for, when it asks for one this client honours."""
    if response.status != 429:
        return None
    delay = retry_after_seconds(response.headers.get("Retry-After"))
    return delay if delay is not None and delay <= MAX_RETRY_AFTER else None


@contextlib.contextmanager
def _unreachable_is_unavailable() -> Iterator[None]:
    """Unreachable, an answer cut short, no credentials to send: KubeUnavailable (worth a retry,
    not our bug)."""
    try:
        yield
    except HttpFailure as exc:
        raise KubeUnavailable(0, "Unreachable", type(exc).__name__) from None
    except CredentialError as exc:
        raise KubeUnavailable(0, "NoCredentials", str(exc)) from None


def _map_error(response: Response) -> KubeError:
    status = int(response.status or 0)
    reason = str(response.reason or "")
    message = ""
    try:
        message = str(json.loads(response.data or "{}").get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    if status == 409:
        return KubeConflict(status, reason, message)
    refusal = _FORBIDDEN.search(message) if status == 403 else None
    if refusal is not None:
        group = refusal["group"]
        resource = f"{refusal['resource']}.{group}" if group else refusal["resource"]
        return KubeForbidden(
            reason,
            message,
            user=refusal["user"],
            verb=refusal["verb"],
            resource=resource,
            namespace=refusal["namespace"] or "",
        )
    if status == 0 or status >= 500 or status == 429:
        return KubeUnavailable(status, reason, message)
    return KubeError(status, reason, message)


@dataclass(frozen=True)
class Connection:
    """Where and how the API client connects; handed to Kopf so both use one identity."""

    server: str
    token: str | None
    ca_path: str | None
    certificate_path: str | None
    private_key_path: str | None
    insecure: bool
    default_namespace: str | None = None
    #: When an exec plugin's credential stops working: Kopf logs in again by then.
    expiration: datetime | None = None

    def __repr__(self) -> str:  # never the token
        return f"Connection(server={self.server!r}, expiration={self.expiration})"


def connection_of(api_client: KubeConnection, *, renew: bool = False) -> Connection:
    """The connection's identity as it is now; ``renew`` first re-reads the token file or
    re-runs the exec plugin (Kopf asks again after a 401 or at ``expiration``: the credential
    it had was refused or is about to be, and giving it the same one again would not help).

    Raises KubeConfigError for a setting only rotator's own client honours (tls-server-name)."""
    settings = api_client.settings
    if settings.tls_server_name:
        raise KubeConfigError(
            f"{settings.source}: tls-server-name is not supported by Kopf's client; "
            "use a server address the API server's certificate names"
        )
    if renew:
        api_client.renew_credentials()
    credentials = api_client.credentials()
    return Connection(
        server=settings.server,
        token=credentials.token,
        ca_path=api_client.ca_path,
        certificate_path=credentials.cert_file,
        private_key_path=credentials.key_file,
        insecure=settings.insecure,
        expiration=credentials.expiration,
    )
