"""The KV v2 calls made without hvac (``rotator.stores.vault.kv_api``) against OpenBao: each
answers and fails as hvac's own method does, on the operator's client (straight to the pool)
and on a client whose session is a plain ``requests.Session`` (through hvac's adapter); a
redirect is followed through hvac; the headers hvac would send are sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests

from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.processes import free_port
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv_api import KV2Api
from rotator.stores.vault.transport import DirectSession
from tests.fixtures.listener import Answer, Listener

MOUNT = "secret"
Client = Callable[[str, str], hvac.Client]


def _direct(address: str, token: str) -> hvac.Client:
    client = vault_client(address, token, 5.0)
    assert isinstance(client.session, DirectSession)
    assert client.session.direct
    return client


def _through_requests(address: str, token: str) -> hvac.Client:
    return hvac.Client(url=address, token=token, timeout=5, session=requests.Session())


CLIENTS = pytest.mark.parametrize("make_client", [_direct, _through_requests], ids=["direct", "hvac"])


def _refused(call: Callable[[], Any]) -> hvac.exceptions.VaultError:
    with pytest.raises(hvac.exceptions.VaultError) as raised:
        call()
    return raised.value


@CLIENTS
def test_each_call_answers_and_fails_as_hvacs_own_method(openbao: OpenBaoServer, make_client: Client) -> None:
    api = KV2Api(make_client(openbao.address, openbao.root_token))
    kv = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5).secrets.kv.v2
    path = f"api/{uuid.uuid4().hex}/a b"  # a space: quoted as hvac quotes it

    missing = _refused(lambda: api.read_metadata(MOUNT, path))
    expected = _refused(lambda: kv.read_secret_metadata(path=path, mount_point=MOUNT))
    assert (type(missing), missing.errors) == (hvac.exceptions.InvalidPath, expected.errors)

    written = api.write_data(MOUNT, path, {"value": "one"}, cas=0)
    assert written is not None
    assert written["data"]["version"] == 1
    lost = _refused(lambda: api.write_data(MOUNT, path, {"value": "two"}, cas=0))
    hvac_lost = _refused(
        lambda: kv.create_or_update_secret(path=path, secret={"value": "two"}, cas=0, mount_point=MOUNT)
    )
    assert type(lost) is hvac.exceptions.InvalidRequest
    assert "check-and-set" in str(lost)
    assert str(lost) == str(hvac_lost)
    api.write_data(MOUNT, path, {"value": "two"}, cas=1)

    first = api.read_data(MOUNT, path, 1)
    latest = api.read_data(MOUNT, path)
    assert first is not None
    assert latest is not None
    assert (
        first["data"]
        == kv.read_secret_version(path=path, version=1, mount_point=MOUNT, raise_on_deleted_version=True)[
            "data"
        ]
    )
    assert (latest["data"]["data"], latest["data"]["metadata"]["version"]) == ({"value": "two"}, 2)

    assert api.patch_metadata(MOUNT, path, {"custom_metadata": {"owner": "ns/p"}}) is None
    assert api.patch_metadata(MOUNT, path, {"max_versions": 12}) is None
    meta = api.read_metadata(MOUNT, path)
    assert meta is not None
    assert meta["data"] == kv.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    assert (meta["data"]["custom_metadata"], meta["data"]["max_versions"]) == ({"owner": "ns/p"}, 12)

    api.destroy(MOUNT, path, [1])
    gone = _refused(lambda: api.read_data(MOUNT, path, 1))
    assert type(gone) is hvac.exceptions.InvalidPath
    assert gone.json is not None
    assert gone.json["data"]["metadata"]["destroyed"] is True

    unpatched = f"{path}-new"
    assert type(_refused(lambda: api.patch_metadata(MOUNT, unpatched, {"custom_metadata": {}}))) is (
        hvac.exceptions.InvalidPath
    )
    api.write_metadata(MOUNT, unpatched, {"owner": "ns/p"})
    created = kv.read_secret_metadata(path=unpatched, mount_point=MOUNT)["data"]
    assert (created["custom_metadata"], created["delete_version_after"]) == ({"owner": "ns/p"}, "0s")

    config = api.read_config(MOUNT)
    assert config is not None
    assert "max_versions" in config["data"]
    mount = api.read_mount(MOUNT)
    assert mount is not None
    assert (mount["data"]["type"], mount["data"]["options"]["version"]) == ("kv", "2")


@CLIENTS
def test_a_token_without_the_capability_is_forbidden_with_vaults_words(
    openbao: OpenBaoServer, make_client: Client
) -> None:
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    admin.sys.create_or_update_policy(f"read-{uuid.uuid4().hex[:6]}", 'path "secret/metadata/*" {}')
    token = admin.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    api = KV2Api(make_client(openbao.address, token))
    denied = _refused(lambda: api.write_data(MOUNT, f"api/{uuid.uuid4().hex}", {"value": "x"}, cas=0))
    assert type(denied) is hvac.exceptions.Forbidden
    assert denied.errors
    assert "permission denied" in denied.errors[0]
    assert token not in str(denied)
    assert '"value"' not in str(denied)


def test_a_server_that_is_not_there_is_requests_connection_error() -> None:
    api = KV2Api(_direct(f"http://127.0.0.1:{free_port()}", "t"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api.read_metadata(MOUNT, "x")


@pytest.fixture
def standby(openbao: OpenBaoServer) -> Iterator[Listener]:
    """An HA standby: it names the active node (307) and performs nothing."""

    def redirect(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return 307, {"Location": f"{openbao.address}{path}"}, b""

    with Listener(redirect) as front:
        yield front


def test_a_redirect_from_a_standby_is_followed_through_hvac(
    openbao: OpenBaoServer, standby: Listener
) -> None:
    path = f"api/{uuid.uuid4().hex}"
    api = KV2Api(_direct(standby.address, openbao.root_token))
    written = api.write_data(MOUNT, path, {"value": "v"}, cas=0)
    assert written is not None
    assert written["data"]["version"] == 1
    read = api.read_data(MOUNT, path)
    assert read is not None
    assert read["data"]["data"] == {"value": "v"}
    # Each call meets the standby three times: straight from the pool, again from hvac on the
    # DirectSession (which hands a redirect to requests), and from requests, which follows.
    # Rare (rotator is pointed at the active node), and nothing is performed before the follow.
    assert list(zip(standby.methods, standby.paths, strict=True)) == [
        *[("POST", f"/v1/secret/data/{path}")] * 3,
        *[("GET", f"/v1/secret/data/{path}")] * 3,
    ]


def test_the_headers_are_hvacs_and_the_token_is_the_clients_current_one() -> None:
    refusal = json.dumps({"errors": []}).encode()

    def not_found(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return 404, {"Content-Type": "application/json"}, refusal

    with Listener(not_found) as front:
        client = vault_client(front.address, "first-token", 5.0)
        client.adapter.namespace = "team-a"
        api = KV2Api(client)
        assert type(_refused(lambda: api.read_metadata(MOUNT, "x"))) is hvac.exceptions.InvalidPath
        client.token = "renewed-token"  # a login: the next call carries the new token
        assert type(_refused(lambda: api.read_metadata(MOUNT, "x"))) is hvac.exceptions.InvalidPath
    tokens = [headers.get("X-Vault-Token") for headers in front.headers]
    assert tokens == ["first-token", "renewed-token"]
    for headers in front.headers:
        assert (headers.get("X-Vault-Request"), headers.get("X-Vault-Namespace")) == ("true", "team-a")
