"""The session under hvac (``rotator.stores.vault.transport``): plain calls go straight to a
connection pool (rotator.http1) and must look to hvac and rotator as requests' answers and failures did."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping

import hvac.exceptions
import pytest
import requests

from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.processes import free_port
from rotator.stores.vault.client import TRANSIENT, connect
from rotator.stores.vault.transport import DirectSession
from tests.fixtures.listener import Answer, Listener, Responder


def test_kv_round_trip_through_the_direct_pool(openbao: OpenBaoServer) -> None:
    client = connect(openbao.address, 5.0, token=openbao.root_token)
    session = client.adapter.session
    assert isinstance(session, DirectSession)
    path = f"transport/{uuid.uuid4().hex}"
    kv = client.secrets.kv.v2
    written = kv.create_or_update_secret(path=path, secret={"value": "a b/c?"}, mount_point="secret")
    read = kv.read_secret_version(path=path, version=1, mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"value": "a b/c?"}
    assert read["data"]["metadata"]["version"] == written["data"]["version"] == 1
    assert len(session._pools) == 1, "the calls went to the session's own pool, not requests' adapter"


def test_vault_refusals_keep_hvacs_exception_types_and_vaults_words(openbao: OpenBaoServer) -> None:
    client = connect(openbao.address, 5.0, token=openbao.root_token)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version(
            path=f"absent/{uuid.uuid4().hex}", mount_point="secret", raise_on_deleted_version=True
        )
    stranger = connect(openbao.address, 5.0, token="not-a-token")
    with pytest.raises(hvac.exceptions.Forbidden) as refused:
        stranger.secrets.kv.v2.read_secret_metadata(path="anything", mount_point="secret")
    assert refused.value.errors, "Vault's error text reaches the exception, as through requests"


def _json(body: bytes, status: int = 200) -> Responder:
    return lambda method, path, headers, sent: (status, {"Content-Type": "application/json"}, body)


def test_a_redirect_from_a_standby_is_followed() -> None:
    def answer(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if path.startswith("/active"):
            return _json(b'{"data": {"data": {"value": "x"}, "metadata": {"version": 4}}}')(
                method, path, headers, body
            )
        return 307, {"Location": f"{server.address}/active{path}"}, b""

    with Listener(answer) as server:
        client = connect(server.address, 5.0, token="t")
        read = client.secrets.kv.v2.read_secret_version(
            path="p", version=4, mount_point="secret", raise_on_deleted_version=True
        )
    assert read["data"]["metadata"]["version"] == 4
    # The direct call meets the redirect and hands the call to requests, which asks again and
    # follows: a standby performs nothing before it redirects, so the repeat is harmless.
    assert server.paths == ["/v1/secret/data/p?version=4"] * 2 + ["/active/v1/secret/data/p?version=4"]


def test_a_server_error_is_hvacs_transient_error() -> None:
    with Listener(_json(b'{"errors": ["Vault is sealed"]}', 503)) as server:
        client = connect(server.address, 5.0, token="t")
        with pytest.raises(TRANSIENT) as raised:
            client.secrets.kv.v2.read_secret_metadata(path="p", mount_point="secret")
    assert isinstance(raised.value, hvac.exceptions.VaultDown)
    assert raised.value.errors == ["Vault is sealed"]


def test_nobody_listening_is_requests_connection_error() -> None:
    client = connect(f"http://127.0.0.1:{free_port()}", 2.0, token="t")
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        client.secrets.kv.v2.read_secret_metadata(path="p", mount_point="secret")
    assert isinstance(raised.value, TRANSIENT)
    assert not isinstance(raised.value, requests.exceptions.Timeout)


def test_a_server_that_never_answers_is_requests_read_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts into the backlog, never reads nor answers
        client = connect(f"http://127.0.0.1:{silent.getsockname()[1]}", 0.3, token="t")
        with pytest.raises(requests.exceptions.ReadTimeout) as raised:
            client.secrets.kv.v2.read_secret_metadata(path="p", mount_point="secret")
    assert isinstance(raised.value, TRANSIENT)


def test_a_proxy_sends_the_call_through_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    with Listener(_json(b'{"data": {"keys": []}}')) as proxy:
        # The local server plays the proxy: a proxied request names the absolute URL in its line.
        monkeypatch.setenv("HTTP_PROXY", proxy.address)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = connect("http://vault.invalid:8200", 5.0, token="t")
        client.secrets.kv.v2.read_secret_metadata(path="p", mount_point="secret")
    assert proxy.paths == ["http://vault.invalid:8200/v1/secret/metadata/p"]
    assert not client.adapter.session._pools
