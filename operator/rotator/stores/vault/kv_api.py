"""The KV v2 calls of the Vault store, each one request straight on the session's pool.

hvac's way to the wire (its KV method, its adapter, requests' ``Response`` and the JSON decode
behind it) adds half again to the CPU of the call: against OpenBao on a quiet machine,
~155 µs a read through hvac, ~100 µs through this module. A rotation makes eight such
calls, a first rotation more, and hvac was ~12 % of the operator's samples while 1,000 new
policies rotated for the first time.

Only the transport changes: each call sends what hvac's method sends (the same path, quoted
as hvac quotes it, the same body and headers, the client's current token and namespace), and a
refusal is hvac's exception for its status (``VaultError.from_status``, Vault's ``errors`` as the
message), so the store's error handling and messages are unchanged; a connection that fails is
requests' exception, as through hvac. A client whose session is not a plain
:class:`DirectSession` (a proxy, a client certificate, a test's counting session) and a redirect
(an HA standby naming the active node; it performed nothing) go through hvac's adapter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import hvac
import hvac.exceptions

from rotator.stores.vault.transport import REDIRECTS, DirectSession

JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"


class KV2Api:
    """The calls :class:`rotator.stores.vault.kv2.VaultKV2Store` makes, on one hvac client."""

    def __init__(self, client: hvac.Client) -> None:
        self._client = client
        adapter = client.adapter
        scheme, _, rest = str(adapter.base_uri).partition("://")
        server, _, prefix = rest.partition("/")
        self._scheme = scheme.lower()
        self._server = server
        self._prefix = f"/{prefix.strip('/')}" if prefix.strip("/") else ""

    def read_metadata(self, mount: str, path: str) -> Mapping[str, Any] | None:
        return self._request("GET", f"/v1/{_quoted(mount)}/metadata/{_quoted(path)}")

    def read_data(self, mount: str, path: str, version: int | None = None) -> Mapping[str, Any] | None:
        """A version's data and metadata (latest without ``version``); a deleted or destroyed
        version is ``InvalidPath``, as hvac's ``raise_on_deleted_version=True``."""
        query = "" if version is None else f"?version={int(version)}"
        return self._request("GET", f"/v1/{_quoted(mount)}/data/{_quoted(path)}{query}")

    def write_data(
        self, mount: str, path: str, data: Mapping[str, str], cas: int
    ) -> Mapping[str, Any] | None:
        body = {"options": {"cas": cas}, "data": dict(data)}
        return self._request("POST", f"/v1/{_quoted(mount)}/data/{_quoted(path)}", body)

    def patch_metadata(self, mount: str, path: str, changes: Mapping[str, Any]) -> None:
        """A JSON merge patch of the path's metadata (``InvalidPath`` when it has none yet)."""
        self._request("PATCH", f"/v1/{_quoted(mount)}/metadata/{_quoted(path)}", changes, MERGE_PATCH)

    def write_metadata(self, mount: str, path: str, custom: Mapping[str, str]) -> None:
        """Metadata written whole, as hvac's ``update_metadata`` writes it (its default
        ``delete_version_after`` included)."""
        body = {"delete_version_after": "0s", "custom_metadata": dict(custom)}
        self._request("POST", f"/v1/{_quoted(mount)}/metadata/{_quoted(path)}", body)

    def destroy(self, mount: str, path: str, versions: Sequence[int]) -> None:
        self._request("POST", f"/v1/{_quoted(mount)}/destroy/{_quoted(path)}", {"versions": list(versions)})

    def read_config(self, mount: str) -> Mapping[str, Any] | None:
        return self._request("GET", f"/v1/{_quoted(mount)}/config")

    def read_mount(self, mount: str) -> Mapping[str, Any] | None:
        """What ``sys/internal/ui/mounts/<mount>`` says of the mount holding that path."""
        return self._request("GET", f"/v1/sys/internal/ui/mounts/{_quoted(mount)}")

    def _request(
        self, method: str, target: str, body: Mapping[str, Any] | None = None, content_type: str = JSON
    ) -> Mapping[str, Any] | None:
        """The decoded answer of a 200 (None for an empty one: a 204); hvac's exception for a
        refusal, requests' for a failed connection."""
        adapter = self._client.adapter
        session = adapter.session
        if not (isinstance(session, DirectSession) and session.direct):
            return self._through_hvac(method, target, body, content_type)
        headers = {"X-Vault-Request": "true"}
        if adapter.token:
            headers["X-Vault-Token"] = adapter.token
        if adapter.namespace:
            headers["X-Vault-Namespace"] = adapter.namespace
        payload = None
        if body is not None:
            payload = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = content_type
        answer = session.call(
            method, self._scheme, self._server, self._prefix + target, headers, payload, session.timeout
        )
        if answer.status in REDIRECTS and adapter.allow_redirects:
            return self._through_hvac(method, target, body, content_type)
        if answer.status >= 400:
            url = f"{self._scheme}://{self._server}{self._prefix}{target}"
            raise _refusal(method.lower(), url, answer.status, answer.headers.get("Content-Type"),
                           answer.data)  # fmt: skip
        if answer.status != 200 or not answer.data:
            return None
        try:
            decoded = json.loads(answer.data)
        except ValueError:
            return None  # as hvac: a 200 that is not JSON is no answer to read
        return decoded if isinstance(decoded, Mapping) else None

    def _through_hvac(
        self, method: str, target: str, body: Mapping[str, Any] | None, content_type: str
    ) -> Mapping[str, Any] | None:
        headers = {"Content-Type": content_type} if content_type != JSON else None
        answer = self._client.adapter.request(method.lower(), target, headers=headers, json=body)
        return answer if isinstance(answer, Mapping) else None


def _quoted(part: str) -> str:
    """A path part quoted as hvac quotes it (``utils.format_url``: ``/`` kept)."""
    return quote(part.encode())


def _refusal(
    method: str, url: str, status: int, content_type: str | None, data: bytes
) -> hvac.exceptions.VaultError:
    """hvac's exception for a refused call, built as its adapter builds it (``errors`` from a
    JSON answer, else the answer's text as the message; the method in lower case, as hvac's
    methods name it)."""
    text = data.decode("utf-8", "replace")
    decoded: Any = None
    errors = None
    if content_type == JSON:
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        else:
            errors = decoded.get("errors") if isinstance(decoded, Mapping) else None
    error: hvac.exceptions.VaultError = hvac.exceptions.VaultError.from_status(
        status, None if errors is not None else text, errors=errors, method=method, url=url, text=text,
        json=decoded,
    )  # fmt: skip
    return error
