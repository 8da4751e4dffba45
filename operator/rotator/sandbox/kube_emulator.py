"""A Kubernetes API emulator good enough for Kopf, kubectl and the rotator (DESIGN §5).

It subclasses kmock's ``KubernetesEmulator`` to keep kmock's request model and DSL (tests can
still add reactions such as ``emulator['patch', kmock.resource('apps/v1/deployments')] << 500``,
which take priority over the emulation), but replaces kmock's storage and fallbacks with
:class:`~rotator.sandbox.kube_store.KubeStore`, which implements the API-server rules that the
clients depend on: resourceVersions with 409 conflicts, generation, the status subresource,
finalizers, selectors, watches resumable from a resourceVersion, discovery, TokenReview, and
CRD-schema validation of custom resources. Server-side printing for ``kubectl get`` (the CRDs'
printer columns) is :mod:`~rotator.sandbox.kube_table`; the protobuf bodies of kubectl's typed
``create`` commands are read by :mod:`~rotator.sandbox.kube_protobuf`. Both are checked against
kube-apiserver in tests/realkube/test_emulator_parity.py.

kmock records every request forever, and its reactions scan that history, making each request
O(n); this emulator keeps only the last ``history_limit`` requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, parsing, rendering

from rotator.sandbox import kube_patch, kube_protobuf, kube_table
from rotator.sandbox.kube_store import JSON, ApiError, KubeStore, ResourceType

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 200
"""Requests kept for assertions: enough to debug a failing test, small enough to stay O(1)."""

DEFAULT_BOOKMARK_INTERVAL = 5.0
"""Seconds between BOOKMARK events on a watch that allows them. kube-apiserver's watch cache sends
one about every minute; the sandbox's streams are short and its tests shorter, so every few
seconds keeps a client's resourceVersion fresh within one ``timeoutSeconds`` window."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _json_int(text: str) -> int | float:
    """Decode a JSON integer as kube-apiserver does (sigs.k8s.io/json): int64 when it fits, else
    a float64, which a schema's ``type: integer`` then refuses with 422 Invalid."""
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


@functools.lru_cache(maxsize=512)
def _resource(group: str, version: str, plural: str) -> kmock.resource:
    """kmock's resource reference (frozen; ~33 µs to build, once per request before)."""
    return kmock.resource(group=group, version=version, plural=plural)


@functools.lru_cache(maxsize=32)
def _method(name: str) -> kmock.method:
    return kmock.method(name)


@dataclass
class Fault:
    """An injected failure: answer ``code`` to matching requests, ``times`` times (None: always).

    Used by tests to make the API server flaky (500s, 409s, 429s) without touching the stored
    objects: a faulted request changes nothing, as with a real server failing before storage.
    """

    path: re.Pattern[str]
    method: str | None = None
    code: int = 500
    reason: str = "InternalError"
    message: str = "injected fault"
    times: int | None = 1
    hits: int = 0
    retry_after: int | None = None
    """Seconds for a ``Retry-After`` header (and ``details.retryAfterSeconds``), as
    kube-apiserver's API Priority and Fairness sends with a 429."""

    def matches(self, method: str, path: str) -> bool:
        """Whether the request is one to fail (and the fault is not used up)."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return bool(self.path.search(path))


@dataclass(frozen=True)
class TokenIdentity:
    """Who a registered bearer token authenticates as in a TokenReview."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ("system:authenticated",)
    extra: Mapping[str, list[str]] = field(default_factory=dict)
    #: Audiences a minted token is bound to; None: any (registered by hand, like a legacy token).
    audiences: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ParsedPath:
    """A resource URL split into its parts (kmock's parser misreads ``/api/v1/namespaces/x``)."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_resource_path(path: str) -> ParsedPath | None:
    """Split ``/api(s)/…/[namespaces/NS/]PLURAL[/NAME[/SUB]]``; None for non-resource paths."""
    segments = [s for s in path.strip("/").split("/") if s]
    if len(segments) >= 3 and segments[0] == "api":
        group, version, rest = "", segments[1], segments[2:]
    elif len(segments) >= 4 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    return ParsedPath(
        group,
        version,
        rest[0],
        namespace,
        rest[1] if len(rest) > 1 else None,
        rest[2] if len(rest) > 2 else None,
    )


API_SERVER_AUDIENCE = "https://kubernetes.default.svc"
"""The audience tokens get when a TokenRequest names none (kube-apiserver's --api-audiences);
``KubeEmulator.api_audiences`` changes it per emulator."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with kube-apiserver semantics (see the module docstring).

    Construct, enter (``async with``), and serve with any aiohttp server, e.g.
    ``aiohttp.web.Server(emulator)``; :class:`rotator.sandbox.kube_server.KubeServer` does it in
    a background thread. All state lives in :attr:`store`.
    """

    history_limit: int = DEFAULT_HISTORY_LIMIT
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL
    store: KubeStore = attrs.field(factory=KubeStore)
    faults: list[Fault] = attrs.field(factory=list)
    tokens: dict[str, TokenIdentity] = attrs.field(factory=dict)
    #: kube-apiserver's ``--api-audiences``: what a TokenRequest or TokenReview naming none gets.
    api_audiences: tuple[str, ...] = attrs.field(default=(API_SERVER_AUDIENCE,))
    request_count: int = attrs.field(default=0, init=False)
    expired_watches: int = attrs.field(default=0, init=False)
    """Watches answered with the in-stream 410 ``Expired`` event (for tests to see the path taken)."""

    def __attrs_post_init__(self) -> None:
        # Deliberately not calling kmock's post-init: its fallback reactions would record every
        # request in their own unbounded lists; the emulation is dispatched in __call__ instead.
        pass

    @property
    def history(self) -> list[rendering.Request]:
        """The most recent requests (at most ``history_limit``), oldest first."""
        return list(self._requests)

    # ------------------------------------------------------------------------------- entry

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Serve one HTTP request: injected faults, then kmock reactions, then the emulation."""
        await raw_request.read()
        self.request_count += 1
        request = await self._parse(raw_request)
        self._requests.append(request)
        if len(self._requests) > 2 * self.history_limit:  # trim in batches: amortised O(1)
            del self._requests[: len(self._requests) - self.history_limit]
        try:
            for fault in self.faults:
                if fault.matches(raw_request.method, raw_request.path):
                    fault.hits += 1
                    if fault.retry_after is not None:
                        details = {"retryAfterSeconds": fault.retry_after}
                        answer = ApiError(fault.code, fault.reason, fault.message, details).status()
                        headers = {"Retry-After": str(fault.retry_after)}
                        return aiohttp.web.json_response(answer, status=fault.code, headers=headers)
                    raise ApiError(fault.code, fault.reason, fault.message)
            if self._payloads:  # user-defined kmock reactions win over the emulation
                with contextlib.suppress(NotImplementedError):
                    return await apps.RawHandler._handle(self, request)
            return await self._dispatch(request, raw_request)
        except ApiError as exc:
            return aiohttp.web.json_response(exc.status(), status=exc.code)
        except Exception as exc:  # a bug in the emulator: answer it, as kube-apiserver would a panic
            logger.exception("emulator failed on %s %s", raw_request.method, raw_request.path_qs)
            error = ApiError(500, "InternalError", f"emulator error: {exc!r}")
            return aiohttp.web.json_response(error.status(), status=500)

    async def _parse(self, raw: aiohttp.web.BaseRequest) -> rendering.Request:
        """Build kmock's request model without its parser, which fails on some valid URLs
        (``/api/v1/namespaces``) and on binary bodies (kubectl's protobuf)."""
        body = await raw.read()
        content_type = raw.headers.get("Content-Type", "")
        data: Any = None
        text = ""
        if "protobuf" in content_type:
            with contextlib.suppress(kube_protobuf.UnsupportedProtobuf):
                data = kube_protobuf.decode(body)  # kubectl's typed commands (create secret, …)
        elif "cbor" not in content_type:
            text = body.decode("utf-8", errors="replace")
            with contextlib.suppress(ValueError):
                data = json.loads(text, parse_int=_json_int) if text else None
        parsed = parse_resource_path(raw.path)
        method = _method(raw.method)
        resource = action = None
        if parsed is not None:
            resource = _resource(parsed.group, parsed.version, parsed.plural)
            path = parsing.ParsedPath(
                parsed.group, parsed.version, parsed.plural, parsed.namespace, parsed.name, parsed.subresource
            )
            action = parsing.guess_k8s(path, method, dict(raw.query))
        return rendering.Request(
            id=self.request_count,
            raw_request=raw,
            url=raw.url,
            method=raw.method,
            params=dict(raw.query),
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            body=body,
            text=text,
            data=data,
            action=action,
            resource=resource,
            namespace=parsed.namespace if parsed else None,
            name=parsed.name if parsed else None,
            subresource=parsed.subresource if parsed else None,
        )

    async def _dispatch(
        self, request: rendering.Request, raw: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        method, path = raw.method.upper(), raw.path
        content_type = raw.headers.get("Content-Type", "")
        unreadable = "cbor" in content_type
        if "protobuf" in content_type and request.body:
            try:
                kube_protobuf.decode(request.body)
            except kube_protobuf.UnsupportedProtobuf as exc:
                unreadable, content_type = True, f"{content_type}: {exc}"
        if unreadable:  # client-go retries in JSON after a 415 to CBOR; protobuf it never retries
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/json-patch+json, application/merge-patch+json, "
                f"application/strategic-merge-patch+json (got {content_type})",
            )
        if method == "GET":
            discovery = self._discovery(path, raw)
            if discovery is not None:
                return aiohttp.web.json_response(discovery)
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        parsed = parse_resource_path(path)
        if parsed is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt = self.store.type_for(parsed.group, parsed.version, parsed.plural)
        namespace = parsed.namespace if rt.namespaced else None
        params = raw.query
        dry_run = params.get("dryRun") == "All"
        if parsed.name is None:
            if method == "GET" and _truthy(params.get("watch")):
                return await self._watch(rt, namespace, raw)
            if method == "GET":
                items, rv = self.store.list_objects(
                    rt, namespace, params.get("labelSelector", ""), params.get("fieldSelector", "")
                )
                listing = {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                }
                return self._respond(listing, raw, rt)
            if method == "POST":
                body = self._body(request)
                if rt.key == ("authentication.k8s.io", "v1", "tokenreviews"):
                    return aiohttp.web.json_response(self._token_review(body), status=201)
                if rt.key == ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"):
                    # The emulator enforces no RBAC: every request of every caller is allowed.
                    review = {**body, "status": {"allowed": True, "reason": "the emulator enforces no RBAC"}}
                    return aiohttp.web.json_response(review, status=201)
                created = self.store.create(rt, namespace, body, dry_run=dry_run)
                return self._respond(created, raw, rt, status=201)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        name, sub = parsed.name, parsed.subresource
        if sub == "scale":
            return aiohttp.web.json_response(self._scale(rt, namespace, name, method, request, raw))
        if sub == "token" and rt.key == ("", "v1", "serviceaccounts") and method == "POST":
            minted = self._token_request(rt, namespace or "", name, self._body(request))
            return aiohttp.web.json_response(minted, status=201)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"the server could not find the subresource {sub!r}")
        if method == "GET":
            return self._respond(self.store.get(rt, namespace, name), raw, rt)
        if method == "PUT":
            replaced = self.store.replace(rt, namespace, name, self._body(request), sub, dry_run=dry_run)
            return self._respond(replaced, raw, rt)
        if method == "PATCH":
            content_type = raw.headers.get("Content-Type", "application/merge-patch+json")
            patched = self.store.patch(rt, namespace, name, content_type, request.data, sub, dry_run=dry_run)
            return self._respond(patched, raw, rt)
        if method == "DELETE":
            body = request.data if isinstance(request.data, dict) else {}
            deleted = self.store.delete(rt, namespace, name, body.get("preconditions"), dry_run=dry_run)
            return self._respond(deleted, raw, rt)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    @staticmethod
    def _body(request: rendering.Request) -> JSON:
        if not isinstance(request.data, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        return request.data

    def _respond(
        self, payload: JSON, raw: aiohttp.web.BaseRequest, rt: ResourceType, status: int = 200
    ) -> aiohttp.web.Response:
        """Answer JSON, or a meta.k8s.io Table when kubectl asks for server-side printing."""
        if "as=Table" in raw.headers.get("Accept", ""):
            payload = self._as_table(payload, rt, raw)
        return aiohttp.web.json_response(payload, status=status)

    def _as_table(self, payload: JSON, rt: ResourceType, raw: aiohttp.web.BaseRequest) -> JSON:
        """The Table kube-apiserver prints ``payload`` as (a CRD's printer columns, for a CR)."""
        columns = kube_table.columns_for(rt.group, rt.kind, rt.printer_columns)
        try:
            return kube_table.as_table(payload, columns, self.store.now(), raw.query.get("includeObject", ""))
        except kube_table.BadTableRequest as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc

    # --------------------------------------------------------------------------- discovery

    def _discovery(self, path: str, raw: aiohttp.web.BaseRequest) -> JSON | None:
        types = self.store.types()
        if path == "/version":
            return {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0-rotator-sandbox",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self._openapi_v3(path, types)
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": raw.host}],
            }
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups(types)}
        if path == "/api/v1":
            return _resource_list("v1", [t for t in types if t.group == ""])
        match = re.fullmatch(r"/apis/([^/]+)(?:/([^/]+))?", path)
        if match is None:
            return None
        group, version = match.group(1), match.group(2)
        if version is None:
            for candidate in self._groups(types):
                if candidate["name"] == group:
                    return {"kind": "APIGroup", "apiVersion": "v1", **candidate}
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        served = [t for t in types if t.group == group and t.version == version]
        if not served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _resource_list(f"{group}/{version}", served)

    @staticmethod
    def _openapi_v3(path: str, types: list[ResourceType]) -> JSON:
        """Just enough OpenAPI v3 for kubectl: every PATCH path declares ``fieldValidation``.

        kubectl (``--validate=strict``, its default) asks OpenAPI v3 whether the server
        validates fields itself; if not, it downloads OpenAPI v2 schemas to validate client
        side and fails without them. Declaring the parameter makes kubectl delegate validation
        to the server, which for custom resources is what the emulator does. There are no
        component schemas, so kubectl apply builds its patches from its compiled-in types.
        """
        by_gv: dict[str, list[ResourceType]] = {}
        for t in types:
            by_gv.setdefault(f"api/{t.version}" if not t.group else f"apis/{t.group}/{t.version}", []).append(
                t
            )
        if path.rstrip("/") == "/openapi/v3":
            return {
                "paths": {
                    gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_types_hash(ts)}"}
                    for gv, ts in sorted(by_gv.items())
                }
            }
        gv = path[len("/openapi/v3/") :].strip("/")
        if gv not in by_gv:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        paths: JSON = {}
        for t in by_gv[gv]:
            scope = "/namespaces/{namespace}" if t.namespaced else ""
            gvk = {"group": t.group, "version": t.version, "kind": t.kind}
            param = {
                "name": "fieldValidation",
                "in": "query",
                "schema": {"type": "string", "uniqueItems": True},
            }
            paths[f"/{gv}{scope}/{t.plural}/{{name}}"] = {
                "patch": {
                    "operationId": f"patch{t.kind}",
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [param],
                    "responses": {"200": {"description": "OK"}},
                },
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (rotator sandbox)", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }

    @staticmethod
    def _groups(types: list[ResourceType]) -> list[JSON]:
        versions: dict[str, list[str]] = {}
        for t in types:
            if t.group and t.version not in versions.setdefault(t.group, []):
                versions[t.group].append(t.version)
        return [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{group}/{vs[0]}", "version": vs[0]},
            }
            for group, vs in sorted(versions.items())
        ]

    # ----------------------------------------------------------------------- special verbs

    def register_token(self, token: str, identity: TokenIdentity) -> None:
        """Make ``token`` authenticate in TokenReviews (all other tokens are rejected)."""
        self.tokens[token] = identity

    def _token_request(self, rt: ResourceType, namespace: str, name: str, body: JSON) -> JSON:
        """TokenRequest: a JWT-shaped token for an existing ServiceAccount, bound to audiences.

        Like kube-apiserver: 404 for a missing account, expirationSeconds at least 600 (default
        3600), audiences defaulting to the API server's. The token then passes TokenReviews that
        ask for one of its audiences (and only those), as the account, with its uid.
        """
        account = self.store.get(rt, namespace, name)
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise ApiError(
                422, "Invalid", "spec.expirationSeconds: may not specify a duration less than 10 minutes"
            )
        audiences = tuple(str(a) for a in spec.get("audiences") or ()) or self.api_audiences
        uid = str(account.get("metadata", {}).get("uid", ""))
        expires = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(
            seconds=seconds
        )
        claims = {
            "iss": "https://kubernetes.default.svc",
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": list(audiences),
            "exp": int(expires.timestamp()),
            "iat": int(expires.timestamp()) - seconds,
            "nbf": int(expires.timestamp()) - seconds,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
            # The legacy claims Vault's Kubernetes auth still reads when it parses the JWT.
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
        }
        token = ".".join(
            _b64url(part)
            for part in (
                json.dumps({"alg": "RS256", "kid": "emulator"}).encode(),
                json.dumps(claims).encode(),
                secrets.token_bytes(32),
            )
        )
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
        self.register_token(
            token,
            TokenIdentity(f"system:serviceaccount:{namespace}:{name}", uid, groups, audiences=audiences),
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": {**spec, "audiences": list(audiences), "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }

    def _token_review(self, body: JSON) -> JSON:
        spec = body.get("spec") or {}
        identity = self.tokens.get(str(spec.get("token", "")))
        wanted = tuple(str(a) for a in spec.get("audiences") or ()) or self.api_audiences
        if identity is not None and identity.audiences is not None:
            # A bound token authenticates only for one of its own audiences (kube-apiserver's rule).
            matching = [a for a in wanted if a in identity.audiences]
            if not matching:
                identity = None
        status: JSON = {"authenticated": identity is not None}
        if identity is not None:
            status["user"] = {
                "username": identity.username,
                "uid": identity.uid,
                "groups": list(identity.groups),
                "extra": dict(identity.extra),
            }
            own = identity.audiences
            status["audiences"] = (
                [a for a in wanted if own is None or a in own] if spec.get("audiences") else []
            )
        else:
            status["error"] = "invalid bearer token"
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _scale(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        method: str,
        request: rendering.Request,
        raw: aiohttp.web.BaseRequest,
    ) -> JSON:
        """The ``scale`` subresource of workloads: reads and writes ``spec.replicas``."""
        if "scale" not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        obj = self.store.get(rt, namespace, name)
        if method in ("PUT", "PATCH"):
            scale = _scale_of(obj)
            if method == "PUT":
                scale = self._body(request)
            else:
                content_type = raw.headers.get("Content-Type", "application/merge-patch+json")
                if "json-patch" in content_type:
                    scale = kube_patch.apply_json_patch(scale, request.data)
                else:
                    scale = kube_patch.apply_merge_patch(scale, request.data)
            replicas = (scale.get("spec") or {}).get("replicas")
            obj = self.store.patch(
                rt, namespace, name, "application/merge-patch+json", {"spec": {"replicas": replicas}}
            )
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on scale")
        return _scale_of(obj)

    # ------------------------------------------------------------------------------ watch

    async def _watch(
        self, rt: ResourceType, namespace: str | None, raw: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        """Stream watch events as JSON lines until timeoutSeconds, client exit, or shutdown.

        As kube-apiserver's watch cache does: a resourceVersion too old for the history is not an
        HTTP error but a single ``ERROR`` event carrying a 410 ``Expired`` Status, after which the
        stream ends (client-go and Kopf re-list on it); with ``allowWatchBookmarks=true`` a
        ``BOOKMARK`` carrying the latest resourceVersion is sent every :attr:`bookmark_interval`
        seconds while the stream is idle, and once more when ``timeoutSeconds`` ends it.
        """
        params = raw.query
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        try:
            watcher = self.store.watch(
                rt,
                namespace,
                params.get("resourceVersion"),
                params.get("labelSelector", ""),
                params.get("fieldSelector", ""),
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            self.expired_watches += 1
            status = {k: v for k, v in exc.status().items() if k != "details"}
            await response.prepare(raw)
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            await response.write_eof()
            return response
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        table = "as=Table" in raw.headers.get("Accept", "")
        if table:  # refuse a bad includeObject before the stream starts, as kube-apiserver does
            self._as_table({"items": []}, rt, raw)
        bookmarks = _truthy(params.get("allowWatchBookmarks"))

        def bookmark() -> bytes:
            obj = {
                "kind": rt.kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
            }
            return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

        try:
            await response.prepare(raw)
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            next_bookmark = loop.time() + self.bookmark_interval if bookmarks else None
            while True:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    if bookmarks and watcher.queue.empty():
                        await response.write(bookmark())
                    break
                if next_bookmark is not None and now >= next_bookmark and watcher.queue.empty():
                    # Every event up to the latest resourceVersion this watch wants is written.
                    await response.write(bookmark())
                    next_bookmark = now + self.bookmark_interval
                wakes = [t for t in (deadline, next_bookmark) if t is not None]
                try:
                    async with asyncio.timeout(max(0.0, min(wakes) - now) if wakes else None):
                        event = await watcher.queue.get()
                except TimeoutError:
                    continue
                if event is None:  # the server is shutting down, or dropped its watches
                    break
                if table:
                    event = {"type": event["type"], "object": self._as_table(event["object"], rt, raw)}
                await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; a cancelled handler (client gone too) propagates
        finally:
            self.store.unwatch(watcher)
        return response


def _resource_list(group_version: str, types: list[ResourceType]) -> JSON:
    resources: list[JSON] = []
    for t in sorted(types, key=lambda t: t.plural):
        resources.append(
            {
                "name": t.plural,
                "singularName": t.singular or t.kind.lower(),
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
                "shortNames": list(t.short_names),
                "categories": list(t.categories),
            }
        )
        for sub in t.subresources:
            kind = "Scale" if sub == "scale" else t.kind
            resources.append(
                {
                    "name": f"{t.plural}/{sub}",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": kind,
                    "verbs": ["get", "patch", "update"],
                    **({"group": "autoscaling", "version": "v1"} if sub == "scale" else {}),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _types_hash(types: list[ResourceType]) -> str:
    keys = sorted(f"{t.group}/{t.version}/{t.plural}/{t.kind}" for t in types)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16].upper()


def _scale_of(obj: JSON) -> JSON:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }
