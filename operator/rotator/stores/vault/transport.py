"""The HTTP session under hvac: requests' interface, one :mod:`rotator.http1` call underneath.

hvac sends every request through ``requests.Session.request``, which prepares a request object,
merges cookies, hooks and environment settings and parses the URL again before urllib3 sees it:
8 % of the operator's CPU in a mass rotation, on top of the call itself. Vault needs none of
that (a token header, a JSON body, no cookies, redirects only between HA nodes), so
:class:`DirectSession` sends a plain call straight to a connection pool kept per server,
and answers with a ``requests.Response`` and requests' own exceptions, exactly what hvac and
rotator's error handling expect. Anything out of the plain case (a proxy, a client certificate,
cookies, streaming, a redirect to follow) goes through requests unchanged.
"""

from __future__ import annotations

import json as jsonlib
import os
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import requests
import requests.exceptions as rexc
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers, requote_uri

from rotator import http1

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class DirectSession(requests.Session):
    """A ``requests.Session`` whose plain calls skip requests' preparation (module docstring)."""

    def __init__(self, pool_size: int, timeout: float | None = None) -> None:
        super().__init__()
        self._pool_size = pool_size
        self.timeout = timeout
        """The client's timeout, for calls made on the pool without hvac (``kv_api``)."""
        self._pools: dict[tuple[str, str, str | bool], http1.Pool] = {}
        self._lock = threading.Lock()

    def request(  # requests' own signature, keyword for keyword
        self,
        method: str,
        url: Any,
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, str | bytes] | None = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        def through_requests() -> requests.Response:
            return super(DirectSession, self).request(
                method, url, params, data, headers, cookies, files, auth, timeout,
                allow_redirects, proxies, hooks, stream, verify, cert, json,
            )  # fmt: skip

        plain = (
            isinstance(params, Mapping | None)
            and isinstance(data, bytes | str | None)
            and (data is None or json is None)
            and not (cookies or files or auth or hooks or stream or cert or proxies)
            and self.direct
        )
        if not (plain and isinstance(url, str)):
            return through_requests()
        scheme, _, rest = url.partition("://")
        server, slash, path = rest.partition("/")
        target = requote_uri(slash + path)
        if params:
            target = f"{target}{'&' if '?' in target else '?'}{urlencode(params, doseq=True)}"
        sent = {
            name: value if isinstance(value, str) else value.decode("latin-1")
            for name, value in {**self.headers, **(headers or {})}.items()
        }
        body: bytes | str | None = data
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode()
            if not any(name.lower() == "content-type" for name in sent):  # a merge patch names its own
                sent["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode()
        answer = self.call(method.upper(), scheme.lower(), server, target, sent, body, timeout, verify)
        if allow_redirects and answer.status in REDIRECTS:
            # An HA standby names the active node; it performed nothing, so requests may send the
            # call again and follow (rare: rotator is normally pointed at the active address).
            return through_requests()
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = url
        response._content = answer.data
        response._content_consumed = True
        return response

    @property
    def direct(self) -> bool:
        """No session-wide setting that only requests applies (a proxy, cookies, a client
        certificate, auth): plain calls may go straight to the pool."""
        return not (self.proxies or self.cookies or self.cert or self.auth)

    def call(
        self,
        method: str,
        scheme: str,
        server: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: Any,
        verify: Any = None,
    ) -> http1.Answer:
        """One plain call on the pool of ``scheme://server`` (``target``: the quoted path and
        query), trusting ``verify`` or the session's own; failures are requests' exceptions.
        A redirect is answered, not followed."""
        trust = self.verify if verify is None else verify
        try:
            # No retries (as requests' adapter): failures are the caller's.
            return self._pool(scheme, server, trust).request(
                method, target, headers, body, http1.Timeout.of(timeout)
            )
        except http1.HttpFailure as exc:
            raise _as_requests_error(exc) from exc

    def _pool(self, scheme: str, server: str, trust: str | bool) -> http1.Pool:
        key = (scheme, server, trust)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = _new_pool(scheme, server, trust, self._pool_size)
        return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
        super().close()


def _new_pool(scheme: str, server: str, trust: str | bool, size: int) -> http1.Pool:
    _, host, port = http1.split_origin(f"{scheme}://{server}")
    tls = None
    if scheme == "https":
        if trust is False:
            tls = http1.tls_context(verify=False)
        else:
            bundle = DEFAULT_CA_BUNDLE_PATH if trust is True else trust
            if os.path.isdir(bundle):
                tls = http1.tls_context(ca_dir=bundle)
            else:
                tls = http1.tls_context(ca_file=bundle)
    return http1.Pool(host, port, tls=tls, maxsize=size)


def _as_requests_error(exc: http1.HttpFailure) -> rexc.RequestException:
    """requests' exception for the pool's failure, as its own adapter maps urllib3's (hvac and
    rotator catch requests' types); the failure stays attached, its cause the ``ssl`` error
    where the TLS check looks for OpenSSL's verdict."""
    if isinstance(exc, http1.ConnectTimedOut):
        return rexc.ConnectTimeout(exc)
    if isinstance(exc, http1.ReadTimedOut):
        return rexc.ReadTimeout(exc)
    if isinstance(exc, http1.TlsFailed):
        return rexc.SSLError(exc)
    return rexc.ConnectionError(exc)
