"""The in-memory object store behind the Kubernetes API emulator.

kmock's own storage merges dicts and keeps every version of every object; Kopf, kubectl and the
rotator need what kube-apiserver actually promises instead: a global monotonic resourceVersion
with optimistic concurrency (409 on stale writes), uid, generation that moves only with the
spec, a status subresource, finalizers, owner-reference garbage collection, watches that resume
from a resourceVersion, and schema validation of custom resources. This module holds that state
and those rules, with no HTTP in it, so that the rollout simulator can act on the very same
objects (and produce the very same watch events) as HTTP clients do.

All methods are synchronous and must be called from the emulator's event loop: each call is then
atomic with respect to every other request, which is the whole concurrency story of the store.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import importlib
import json
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rotator.json_copy import clone
from rotator.sandbox import kube_patch

JSON = dict[str, Any]
TypeKey = tuple[str, str, str]  # (group, version, plural)
ObjKey = tuple[str, str]  # (namespace or "", name)


_MISSING: Any = object()  # a key absent from a dict, told apart from a null value


class FieldErrorLike(Protocol):
    """What ``rotator.sandbox.schema_validation.validate`` returns for each violation."""

    @property
    def field(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def detail(self) -> str: ...


SchemaValidator = Callable[[Mapping[str, Any], Mapping[str, Any]], "list[FieldErrorLike]"]


class ApiError(Exception):
    """An error answered as a kube-apiserver ``Status`` object (the HTTP layer renders it)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> JSON:
        """Render as the ``Status`` kind every Kubernetes client knows how to decode."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


@dataclass
class ResourceType:
    """One served resource (group/version/plural) and how the API server treats it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    tracks_generation: bool = False
    categories: tuple[str, ...] = ()  # e.g. "all": what ``kubectl get all`` expands to
    schema: Mapping[str, Any] | None = None
    crd_name: str | None = None  # set for custom resources: which CRD registered them
    #: The CRD version's additionalPrinterColumns (custom resources only; empty: served default).
    printer_columns: tuple[Mapping[str, Any], ...] | None = None

    @property
    def key(self) -> TypeKey:
        """The identity of the resource in the store and in URLs."""
        return (self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def status_subresource(self) -> bool:
        """Whether ``.status`` is written only through ``/status`` (and ignored elsewhere)."""
        return "status" in self.subresources

    @property
    def qualified(self) -> str:
        """``deployments.apps`` or ``secrets``: how kube-apiserver names the resource in errors."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(plural: str, kind: str, namespaced: bool = True, **kwargs: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, singular=kind.lower(), **kwargs)


def builtin_types() -> list[ResourceType]:
    """The built-in resources that Kopf, kubectl and the rotator touch (as kube-apiserver 1.32
    serves them: DaemonSets have no ``scale`` subresource there either)."""
    status, workload = ("status",), ("status", "scale")
    all_ = ("all",)

    def apps(plural: str, kind: str, short: str, subresources: tuple[str, ...]) -> ResourceType:
        return ResourceType(
            "apps", "v1", plural, kind, True, kind.lower(), (short,), subresources,
            tracks_generation=True, categories=all_,
        )  # fmt: skip

    return [
        _core("namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=status),
        _core("secrets", "Secret"),
        _core("configmaps", "ConfigMap", short_names=("cm",)),
        _core("events", "Event", short_names=("ev",)),
        _core("pods", "Pod", short_names=("po",), subresources=status, categories=all_),
        _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
        _core("services", "Service", short_names=("svc",), subresources=status, categories=all_),
        apps("deployments", "Deployment", "deploy", workload),
        apps("statefulsets", "StatefulSet", "sts", workload),
        apps("daemonsets", "DaemonSet", "ds", status),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            "customresourcedefinition",
            ("crd", "crds"),
            status,
            tracks_generation=True,
        ),
        ResourceType("events.k8s.io", "v1", "events", "Event", True, "event", ("ev",)),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
        ResourceType(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            False,
            "tokenreview",
            verbs=("create",),
        ),
        ResourceType(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            False,
            "selfsubjectaccessreview",
            verbs=("create",),
        ),
    ]


def now_rfc3339(clock: Callable[[], datetime.datetime]) -> str:
    """Kubernetes timestamps: UTC, second precision, ``Z`` suffix."""
    return clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _load_schema_module() -> Any:
    """Import the CRD schema validator lazily: it pulls in CEL, which plain reads do not need."""
    try:
        return importlib.import_module("rotator.sandbox.schema_validation")
    except ImportError:  # pragma: no cover - the sandbox extra is not installed
        return None


def format_field_error(error: FieldErrorLike) -> tuple[str, str]:
    """Render one field error as kube-apiserver does: (cause message, full ``field: ...`` text)."""
    labels = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueTypeInvalid": "Invalid value",
    }
    label = labels.get(error.type, error.type)
    cause = f"{label}: {error.detail}" if error.detail else label
    return cause, f"{error.field}: {cause}" if error.field else cause


_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_ATTEMPTS = 8


@dataclass(eq=False)
class Watcher:
    """One open watch: a queue of events for a resource, filtered by namespace and selectors."""

    type_key: TypeKey
    namespace: str | None
    labels: list[kube_patch.Requirement]
    fields: list[kube_patch.Requirement]
    queue: asyncio.Queue[JSON | None] = field(default_factory=asyncio.Queue)

    def wants(self, type_key: TypeKey, obj: Mapping[str, Any]) -> bool:
        """Whether an event about ``obj`` belongs on this watch."""
        if type_key != self.type_key:
            return False
        if self.namespace is not None and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return kube_patch.matches_selectors(obj, self.labels, self.fields)

    def sees(self, type_key: TypeKey, event: JSON, before: JSON | None) -> JSON | None:
        """The event as this watch delivers it, or None. As kube-apiserver's watch cache does, a
        modification that moves an object out of the selectors is DELETED (showing the object as
        it was, still matching), one that moves it in is ADDED."""
        now = self.wants(type_key, event["object"])
        if event["type"] != "MODIFIED" or before is None:
            return event if now else None
        was = self.wants(type_key, before)
        if now == was:
            return event if now else None
        if now:
            return {"type": "ADDED", "object": event["object"]}
        return {"type": "DELETED", "object": before}


Listener = Callable[[str, ResourceType, JSON], None]
"""In-process observer of every change: (event type, resource type, object copy)."""


class KubeStore:
    """Objects, resourceVersions, watches, and the write rules of kube-apiserver.

    ``event_log_size`` bounds the history kept for watches that resume from a resourceVersion:
    :meth:`watch` refuses older resumptions with ``ApiError(410, "Expired")``, which the HTTP
    layer sends as kube-apiserver does after compaction (an ``ERROR`` event inside a 200 stream),
    and Kopf and client-go handle by re-listing. :meth:`compact` expires all history at once.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime.datetime] = _utcnow,
        event_log_size: int = 5000,
        validator: SchemaValidator | None = None,
    ) -> None:
        self._clock = clock
        self._rv = 0
        self._types: dict[TypeKey, ResourceType] = {}
        self._objects: dict[TypeKey, dict[ObjKey, JSON]] = {}
        #: (resourceVersion, type, event, the object before a MODIFIED): what a resumed watch
        #: replays, each event as that watch's selectors see it (see Watcher.sees).
        self._log: deque[tuple[int, TypeKey, JSON, JSON | None]] = deque(maxlen=event_log_size)
        self._log_floor = 0  # events up to this resourceVersion are no longer in the log
        self._watchers: set[Watcher] = set()
        self._listeners: list[tuple[Listener, frozenset[TypeKey] | None, bool]] = []
        self._validator = validator
        for resource_type in builtin_types():
            self.register(resource_type)
        for name in ("default", "kube-system", "kube-public"):
            self.create(self.type_for("", "v1", "namespaces"), None, {"metadata": {"name": name}})

    # ---------------------------------------------------------------------------------- types

    def register(self, resource_type: ResourceType) -> None:
        """Serve a resource (built-in at start-up, custom when its CRD is created)."""
        self._types[resource_type.key] = resource_type
        self._objects.setdefault(resource_type.key, {})

    def types(self) -> list[ResourceType]:
        """Every served resource, for discovery."""
        return list(self._types.values())

    def type_for(self, group: str, version: str, plural: str) -> ResourceType:
        """Look a resource up by its URL parts; 404 as kube-apiserver answers unknown ones."""
        try:
            return self._types[(group, version, plural)]
        except KeyError:
            raise ApiError(404, "NotFound", "the server could not find the requested resource") from None

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType:
        """Find the resource serving ``apiVersion``/``kind`` (e.g. for owner references)."""
        for resource_type in self._types.values():
            if resource_type.api_version == api_version and resource_type.kind == kind:
                return resource_type
        raise ApiError(404, "NotFound", f"no resource for {api_version}/{kind}")

    def now(self) -> datetime.datetime:
        """The store's clock: what creationTimestamps are stamped with, and ages measured from."""
        return self._clock()

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out (what a List reports)."""
        return self._rv

    def add_listener(
        self, listener: Listener, resources: Collection[TypeKey] | None = None, *, read_only: bool = False
    ) -> None:
        """Observe changes in-process (the rollout simulator plays controllers this way): of
        the given resource types only, or of every one. Each call gets its own copy, so a
        listener that names its types spares the store a copy of every other write; one that
        promises to only read (``read_only``: a bench's clock) gets the event log's own."""
        types = frozenset(resources) if resources is not None else None
        self._listeners.append((listener, types, read_only))

    def remove_listener(self, listener: Listener) -> None:
        """Stop observing changes."""
        self._listeners = [entry for entry in self._listeners if entry[0] != listener]

    # --------------------------------------------------------------------------------- reads

    def _not_found(self, rt: ResourceType, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{rt.qualified} "{name}" not found',
            {"name": name, "group": rt.group, "kind": rt.plural},
        )

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> ObjKey:
        return ((namespace or "") if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> JSON:
        """Return a copy of one object, or raise 404."""
        obj = self._objects[rt.key].get(self._key(rt, namespace, name))
        if obj is None:
            raise self._not_found(rt, name)
        return clone(obj)

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> JSON:
        """The stored object itself, or 404: for writers that only read it (never change it, never
        hand it out)."""
        obj = self._objects[rt.key].get(self._key(rt, namespace, name))
        if obj is None:
            raise self._not_found(rt, name)
        return obj

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> JSON | None:
        """Return a copy of one object, or None (for in-process callers that expect absence)."""
        obj = self._objects[rt.key].get(self._key(rt, namespace, name))
        return clone(obj) if obj is not None else None

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> tuple[list[JSON], int]:
        """Return matching objects (sorted by namespace/name) and the list's resourceVersion."""
        labels, fields = self._parse_selectors(label_selector, field_selector)
        items = [
            clone(obj)
            for (ns, _), obj in sorted(self._objects[rt.key].items())
            if (namespace is None or not rt.namespaced or ns == namespace)
            and kube_patch.matches_selectors(obj, labels, fields)
        ]
        return items, self._rv

    @staticmethod
    def _parse_selectors(
        label_selector: str, field_selector: str
    ) -> tuple[list[kube_patch.Requirement], list[kube_patch.Requirement]]:
        try:
            return (
                kube_patch.parse_label_selector(label_selector),
                kube_patch.parse_field_selector(field_selector),
            )
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None

    # -------------------------------------------------------------------------------- writes

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _emit(self, event_type: str, rt: ResourceType, obj: JSON, before: JSON | None = None) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = clone(obj)
        if len(self._log) == self._log.maxlen and self._log:
            self._log_floor = self._log[0][0]
        event = {"type": event_type, "object": snapshot}
        self._log.append((rv, rt.key, event, before))
        for watcher in list(self._watchers):
            if (seen := watcher.sees(rt.key, event, before)) is not None:
                watcher.queue.put_nowait(seen)
        for listener, resources, read_only in list(self._listeners):
            if resources is None or rt.key in resources:
                listener(event_type, rt, snapshot if read_only else clone(snapshot))

    def create(
        self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any], *, dry_run: bool = False
    ) -> JSON:
        """Create an object: namespace from the URL, generateName, uid, rv, 409 on duplicates.

        ``dry_run`` (``?dryRun=All``, used by ``kubectl diff``/``--dry-run=server``) validates and
        answers the object without storing it or running side effects.
        """
        if "create" not in rt.verbs:
            raise ApiError(405, "MethodNotAllowed", f"create is not supported on {rt.qualified}")
        obj: JSON = clone(dict(body))
        meta: JSON = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if rt.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(
                    422,
                    "Invalid",
                    f'{rt.kind} "" is invalid: metadata.name: Required value: '
                    "name or generateName is required",
                    {
                        "kind": rt.kind,
                        "group": rt.group,
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: name or generateName is required",
                                "field": "metadata.name",
                            }
                        ],
                    },
                )
            # Like kube-apiserver since 1.32 (RetryGenerateName, KEP-4420): a generated name that
            # is taken is drawn again, up to 8 draws, before the 409. Five characters make a
            # collision likely within a few thousand objects (thousands of Kopf Events at N=1000).
            for _ in range(_GENERATE_ATTEMPTS):
                meta["name"] = prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                if self._key(rt, meta.get("namespace"), meta["name"]) not in self._objects[rt.key]:
                    break
        name = meta["name"]
        key = self._key(rt, meta.get("namespace"), name)
        if key in self._objects[rt.key]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{name}" already exists',
                {"name": name, "group": rt.group, "kind": rt.plural},
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for system_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(system_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339(self._clock)
        if rt.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.status_subresource:  # status is the controllers' to write, not the creator's
            obj.pop("status", None)
        obj = self._admit(rt, obj)
        meta = obj["metadata"]
        self._on_write_hooks(rt, obj)
        if dry_run:
            return clone(obj)
        self._on_create_hooks(rt, obj)
        meta["resourceVersion"] = self._next_rv()
        self._objects[rt.key][key] = obj
        self._emit("ADDED", rt, obj)
        return clone(obj)

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> JSON:
        """PUT: the body is the whole new object (its resourceVersion, if any, is a precondition)."""
        old = self.get(rt, namespace, name)
        return self._commit(rt, old, clone(dict(body)), subresource, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> JSON:
        """PATCH with json-patch, merge-patch or strategic-merge-patch, by content type."""
        old = self._stored(rt, namespace, name)  # read only: every patch kind works on a copy
        kind = content_type.split(";")[0].strip().lower()
        try:
            if kind == "application/json-patch+json":
                new = kube_patch.apply_json_patch(old, patch)
            elif kind == "application/merge-patch+json":
                new = kube_patch.apply_merge_patch(old, patch)
            elif kind == "application/strategic-merge-patch+json":
                new = kube_patch.apply_strategic_merge_patch(old, patch)
            elif kind == "application/apply-patch+yaml":
                raise ApiError(
                    415, "UnsupportedMediaType", "server-side apply is not supported by the sandbox"
                )
            else:
                raise ApiError(
                    415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
                )
        except kube_patch.PatchError as exc:
            reason = "Invalid" if exc.status == 422 else "BadRequest"
            raise ApiError(exc.status, reason, exc.message) from None
        return self._commit(rt, old, new, subresource, dry_run=dry_run)

    def _commit(
        self, rt: ResourceType, old: JSON, new: JSON, subresource: str | None, *, dry_run: bool = False
    ) -> JSON:
        """Apply the write rules shared by PUT and PATCH and store the result."""
        if "update" not in rt.verbs:
            raise ApiError(405, "MethodNotAllowed", f"update is not supported on {rt.qualified}")
        old_meta = old["metadata"]
        name = old_meta["name"]
        new_meta = new.get("metadata")
        requested_rv = new_meta.get("resourceVersion") if isinstance(new_meta, dict) else None
        if requested_rv not in (None, "") and str(requested_rv) != old_meta["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": name, "group": rt.group, "kind": rt.plural},
            )
        if subresource == "status":
            # ``new`` is this write's own copy: keep its status, and old's value of anything
            # else it changed (the status subresource writes status only).
            candidate = new
            for part in set(old) | set(new):
                if part != "status" and new.get(part, _MISSING) != old.get(part, _MISSING):
                    if part in old:
                        candidate[part] = clone(old[part])
                    else:
                        candidate.pop(part)
        elif subresource is None:
            candidate = new
            if rt.status_subresource:
                if "status" in old:
                    candidate["status"] = clone(old["status"])
                else:
                    candidate.pop("status", None)
        else:
            raise ApiError(404, "NotFound", f"subresource {subresource!r} is not writable here")
        meta = candidate.get("metadata")
        if not isinstance(meta, dict):
            meta = candidate["metadata"] = {}
        for system_field in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ):
            if system_field in old_meta:
                meta[system_field] = old_meta[system_field]
            else:
                meta.pop(system_field, None)
        candidate["apiVersion"], candidate["kind"] = rt.api_version, rt.kind
        if subresource is None:
            self._on_write_hooks(rt, candidate)
            if not dry_run:
                self._on_update_hooks(rt, candidate)
        candidate = self._admit(rt, candidate, old)
        meta = candidate["metadata"]
        if candidate == old:
            return clone(old)  # a no-op write changes nothing, not even the resourceVersion
        if rt.tracks_generation and _spec_part(candidate) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 0)) + 1
        if dry_run:
            return clone(candidate)
        meta["resourceVersion"] = self._next_rv()
        key = self._key(rt, meta.get("namespace"), name)
        self._objects[rt.key][key] = candidate
        self._emit("MODIFIED", rt, candidate, before=old)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rt, key)
        return clone(candidate)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        preconditions: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> JSON:
        """DELETE: mark for deletion while finalizers remain, otherwise remove (and collect)."""
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        preconditions = preconditions or {}
        for field_name in ("uid", "resourceVersion"):
            expected = preconditions.get(field_name)
            if expected and expected != meta.get(field_name):
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": Precondition failed: '
                    f"{field_name} in precondition: {expected}, "
                    f"{field_name} in object meta: {meta.get(field_name)}",
                    {"name": name, "group": rt.group, "kind": rt.plural},
                )
        key = self._key(rt, namespace, name)
        if meta.get("deletionTimestamp") or dry_run:
            return obj
        if meta.get("finalizers"):
            meta["deletionTimestamp"] = now_rfc3339(self._clock)
            meta["deletionGracePeriodSeconds"] = 0
            meta["resourceVersion"] = self._next_rv()
            self._objects[rt.key][key] = obj
            self._emit("MODIFIED", rt, obj)
            return clone(obj)
        return self._remove(rt, key)

    def _remove(self, rt: ResourceType, key: ObjKey) -> JSON:
        obj = self._objects[rt.key].pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", rt, obj)
        self._on_delete_hooks(rt, obj)
        return clone(obj)

    # ------------------------------------------------------------------------ special cases

    def _on_create_hooks(self, rt: ResourceType, obj: JSON) -> None:
        if rt.key == ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
            self._register_crd(obj)
        elif rt.key == ("", "v1", "namespaces"):
            obj["status"] = {"phase": "Active"}

    def _on_write_hooks(self, rt: ResourceType, obj: JSON) -> None:
        """Secrets: fold ``stringData`` into base64 ``data``, as kube-apiserver does on write."""
        if rt.key == ("", "v1", "secrets") and "stringData" in obj:
            data = obj.get("data") or {}
            for key, value in (obj.pop("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif rt.key == ("", "v1", "secrets"):
            obj.setdefault("type", "Opaque")

    def _on_update_hooks(self, rt: ResourceType, obj: JSON) -> None:
        if rt.key == ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
            self._register_crd(obj)

    def _on_delete_hooks(self, rt: ResourceType, obj: JSON) -> None:
        """Cascade like the namespace controller, the garbage collector and the CRD finalizer."""
        meta = obj["metadata"]
        if rt.key == ("", "v1", "namespaces"):
            for other in list(self._types.values()):
                if other.namespaced:
                    for key in [k for k in self._objects[other.key] if k[0] == meta["name"]]:
                        self._delete_quietly(other, key)
        if rt.key == ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
            for other in [t for t in self._types.values() if t.crd_name == meta["name"]]:
                for key in list(self._objects[other.key]):
                    self._delete_quietly(other, key)
                del self._types[other.key]
        uid = meta.get("uid")
        for other in list(self._types.values()):
            for key, candidate in list(self._objects.get(other.key, {}).items()):
                owners = candidate.get("metadata", {}).get("ownerReferences") or []
                if any(owner.get("uid") == uid for owner in owners):
                    self._delete_quietly(other, key)

    def _delete_quietly(self, rt: ResourceType, key: ObjKey) -> None:
        if key in self._objects.get(rt.key, {}):
            self.delete(rt, key[0] or None, key[1])

    def _register_crd(self, crd: JSON) -> None:
        """Serve a CRD's versions and report it Established, as the apiextensions server does."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
        if not (group and plural and kind and spec.get("versions")):
            raise ApiError(
                422, "Invalid", "CustomResourceDefinition needs spec.group, spec.names and versions"
            )
        crd_name = crd["metadata"]["name"]
        for stale in [t for t in self._types.values() if t.crd_name == crd_name]:
            del self._types[stale.key]
        storage = []
        for version in spec["versions"]:
            if version.get("storage"):
                storage.append(version["name"])
            if not version.get("served", True):
                continue
            subresources = tuple(sorted((version.get("subresources") or {}).keys()))
            self.register(
                ResourceType(
                    group,
                    version["name"],
                    plural,
                    kind,
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    singular=names.get("singular") or kind.lower(),
                    short_names=tuple(names.get("shortNames") or ()),
                    categories=tuple(names.get("categories") or ()),
                    subresources=subresources,
                    tracks_generation=True,
                    schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                    crd_name=crd_name,
                    printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                )
            )
        previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
        now = now_rfc3339(self._clock)

        def since(condition_type: str) -> str:  # keep transition times: the conditions stay True
            return str(previous.get(condition_type, {}).get("lastTransitionTime") or now)

        accepted = {"plural": plural, "kind": kind, "singular": names.get("singular") or kind.lower()}
        for optional in ("shortNames", "listKind", "categories"):
            if optional in names:
                accepted[optional] = names[optional]
        accepted.setdefault("listKind", f"{kind}List")
        crd["status"] = {
            "acceptedNames": accepted,
            "storedVersions": storage,
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": since("NamesAccepted"),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": since("Established"),
                },
            ],
        }

    def _admit(self, rt: ResourceType, obj: JSON, old: JSON | None = None) -> JSON:
        """Admit a custom resource as apiextensions does: prune, default, validate (422 Invalid;
        ratcheting against ``old`` on an update).

        Uses ``rotator.sandbox.schema_validation`` (structural schema plus
        ``x-kubernetes-validations`` CEL rules); a validator passed to the store replaces it
        (tests use that to stub validation). Returns the object to store.
        """
        if rt.schema is None:
            return obj
        module = _load_schema_module()
        stored: JSON = obj
        if self._validator is not None:
            errors = list(self._validator(rt.schema, obj))
        elif module is not None and hasattr(module, "admit"):
            stored, errors = module.admit(rt.schema, obj, old, owned=True)  # create/_commit's copy
        elif module is not None:
            errors = list(module.validate(rt.schema, obj))
        else:
            return obj
        if not errors:
            return stored
        name = obj.get("metadata", {}).get("name", "")
        if module is not None and hasattr(module, "status_body"):
            body = module.status_body(rt.kind, rt.group, name, errors)
            raise ApiError(422, "Invalid", body["message"], body["details"])
        rendered = [format_field_error(error) for error in errors]
        summary = (
            rendered[0][1] if len(rendered) == 1 else "[" + ", ".join(text for _, text in rendered) + "]"
        )
        raise ApiError(
            422,
            "Invalid",
            f'{rt.kind}.{rt.group} "{name}" is invalid: {summary}',
            {
                "name": name,
                "group": rt.group,
                "kind": rt.kind,
                "causes": [
                    {"reason": error.type, "message": cause, "field": error.field}
                    for error, (cause, _) in zip(errors, rendered, strict=True)
                ],
            },
        )

    # ------------------------------------------------------------------------------ watches

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        since: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Watcher:
        """Open a watch; replay the log after ``since`` (410 when compacted) or send ADDED for all."""
        labels, fields = self._parse_selectors(label_selector, field_selector)
        watcher = Watcher(rt.key, namespace if rt.namespaced else None, labels, fields)
        if since in (None, "", "0"):
            for obj in sorted(
                self._objects[rt.key].values(), key=lambda o: int(o["metadata"]["resourceVersion"])
            ):
                if watcher.wants(rt.key, obj):
                    watcher.queue.put_nowait({"type": "ADDED", "object": clone(obj)})
        else:
            try:
                since_rv = int(str(since))
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}") from None
            if since_rv < self._log_floor:
                raise ApiError(410, "Expired", f"too old resource version: {since_rv} ({self._log_floor})")
            for rv, type_key, event, before in self._log:
                if rv > since_rv and (seen := watcher.sees(type_key, event, before)) is not None:
                    watcher.queue.put_nowait(clone(seen))
        self._watchers.add(watcher)
        return watcher

    def compact(self) -> int:
        """Forget the event history, as etcd compaction does: a watch resuming from any
        resourceVersion before now is expired. Returns the new floor."""
        self._log.clear()
        self._log_floor = self._rv
        return self._log_floor

    def drop_watches(self) -> int:
        """End every open watch stream without closing the server, as a restarted kube-apiserver
        (or a dropped connection) does: clients reconnect from the last resourceVersion they saw.
        Returns how many streams were ended."""
        count = len(self._watchers)
        self.close_watches()
        return count

    def unwatch(self, watcher: Watcher) -> None:
        """Close a watch (idempotent)."""
        self._watchers.discard(watcher)

    def close_watches(self) -> None:
        """End every open watch stream: used at shutdown so HTTP handlers return promptly."""
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()

    @property
    def open_watches(self) -> int:
        """How many watches are open (for leak assertions in tests)."""
        return len(self._watchers)

    def all_objects(self) -> Iterable[tuple[ResourceType, JSON]]:
        """Every stored object with its type (copies), for debugging and dumps."""
        for rt in list(self._types.values()):
            for obj in list(self._objects.get(rt.key, {}).values()):
                yield rt, clone(obj)

    def dump(self) -> str:
        """A JSON dump of all objects, for failure messages."""
        return json.dumps([obj for _, obj in self.all_objects()], indent=1, sort_keys=True)


def _spec_part(obj: Mapping[str, Any]) -> JSON:
    """What generation tracks: everything except metadata and status."""
    return {
        key: value for key, value in obj.items() if key not in ("metadata", "status", "apiVersion", "kind")
    }
