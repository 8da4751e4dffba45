"""The only Kubernetes API wrapper.

A thin JSON-over-REST layer on the official client's connection handling (auth, TLS,
kubeconfig, in-cluster): every object comes back as a plain dict, exactly as the API sent it,
so the pure functions above (rollout health, discovery) work on real-shaped data. It is
synchronous like the client it wraps; callers run it off the event loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

GROUP: Final = "rotator.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "rotationpolicies"
KIND: Final = "RotationPolicy"
API_VERSION: Final = f"{GROUP}/{VERSION}"

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"

JsonObject = dict[str, Any]

_DRY_RUN: Final = {"dryRun": "All"}


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


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """Build one client per process: in-cluster when no kubeconfig is given and one is mounted."""
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(context=context, client_configuration=configuration)
    return k8s.ApiClient(configuration)


def policy_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def secret_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{base}/{name}" if name else base


def lease_path(namespace: str, name: str = "") -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


class Kube:
    """Typed verbs over raw paths; errors mapped to three classes the engine can act on."""

    def __init__(self, api_client: k8s.ApiClient, request_timeout: float = 10.0) -> None:
        self._api = api_client
        self._timeout = request_timeout

    @property
    def api_client(self) -> k8s.ApiClient:
        return self._api

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> JsonObject:
        try:
            response = self._api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=self._timeout,
            )
            data = response.data
            return json.loads(data) if data else {}
        except ApiException as exc:
            raise _map_error(exc) from None
        except (HTTPError, ValueError) as exc:
            # Unreachable, or a body cut short: both are worth a retry, neither is our bug.
            raise KubeUnavailable(0, "Unreachable", type(exc).__name__) from None

    def get(self, path: str) -> JsonObject | None:
        try:
            return self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        """``dry_run``: authorized, admitted and validated by the server, never stored."""
        return self.request("POST", path, dict(body), query=_DRY_RUN if dry_run else None)

    def replace(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        """PUT carrying the resourceVersion it read: a concurrent writer makes this a KubeConflict."""
        return self.request("PUT", path, dict(body), query=_DRY_RUN if dry_run else None)

    def merge_patch(self, path: str, patch: Mapping[str, Any], *, dry_run: bool = False) -> JsonObject:
        return self.request("PATCH", path, dict(patch), MERGE_PATCH, query=_DRY_RUN if dry_run else None)

    def list(self, path: str, label_selector: str | None = None) -> list[JsonObject]:
        query = {"labelSelector": label_selector} if label_selector else None
        items = self.request("GET", path, query=query).get("items", [])
        return list(items)

    # --- RotationPolicy --------------------------------------------------------------------
    def get_policy(self, namespace: str, name: str) -> JsonObject | None:
        return self.get(policy_path(namespace, name))

    def patch_policy_status(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> JsonObject:
        """Merge-patch .status. ``resource_version`` is the version the status was computed from:
        a write by anyone since (another replica, a human, Kopf's annotations) makes this a
        KubeConflict instead of a blind overwrite. None only where nothing was read first."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self.merge_patch(policy_path(namespace, name) + "/status", body)

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


def _map_error(exc: ApiException) -> KubeError:
    status = int(exc.status or 0)
    reason = str(exc.reason or "")
    message = ""
    try:
        message = str(json.loads(exc.body or "{}").get("message", ""))
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


def connection_of(api_client: k8s.ApiClient) -> Connection:
    config = api_client.configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    token = header.split(" ", 1)[-1] if header else None
    return Connection(
        server=config.host,
        token=token,
        ca_path=config.ssl_ca_cert or None,
        certificate_path=config.cert_file or None,
        private_key_path=config.key_file or None,
        insecure=not config.verify_ssl,
    )
