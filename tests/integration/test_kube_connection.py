"""Credentials that stay current, against the emulator: a kubeconfig ``tokenFile`` re-read as it
changes, an exec credential plugin (a real script) run once and kept until its expiry, and both
renewed on a 401, the request then sent once more. What each request carried is read from the
emulator's own request history. The clocks are the test's; the requests are real ones.

TLS, client certificates and the in-cluster mount against kube-apiserver itself:
tests/realkube/test_kube_connection_real.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.kube import _TRANSPORT_RETRIES, POOL_SIZE, Kube, KubeError, KubeUnavailable, connection_of
from rotator.kube_connection import KubeConnection, load_settings
from rotator.sandbox.kube_emulator import Fault
from rotator.sandbox.kube_server import KubeServer
from tests.fixtures.listener import Answer, Listener

NS = "default"
SECRET = f"/api/v1/namespaces/{NS}/secrets/s"
EXPIRY = datetime(2030, 1, 1, tzinfo=UTC)

PLUGIN = """#!{python}
# An exec credential plugin: answers what the files of its state directory (argv[1]) say, and
# logs each run (its argv, KUBERNETES_EXEC_INFO, one variable of the kubeconfig's env).
import json, os, pathlib, sys

state = pathlib.Path(sys.argv[1])
with open(state / "runs", "a") as log:
    run = {{"argv": sys.argv[1:], "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])}}
    log.write(json.dumps({{**run, "env": os.environ.get("PLUGIN_ENV")}}) + "\\n")
if (state / "exit").exists():
    print("plugin failure detail", file=sys.stderr)
    sys.exit(int((state / "exit").read_text()))
if (state / "cert").exists():
    cert, key = (state / "cert").read_text(), (state / "key").read_text()
    status = {{"clientCertificateData": cert, "clientKeyData": key}}
else:
    status = {{"token": (state / "token").read_text()}}
if (state / "expiry").exists():
    status["expirationTimestamp"] = (state / "expiry").read_text()
answer = {{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}}
print(json.dumps(answer))
"""


@dataclass
class Plugin:
    """A real exec plugin script next to a kubeconfig, and its state directory."""

    directory: Path
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.directory / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        script = self.directory / "plugin.py"
        script.write_text(PLUGIN.format(python=sys.executable))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def answer(self, token: str | None = None, *, expiry: datetime | None = None) -> None:
        if token is not None:
            (self.state / "token").write_text(token)
        if expiry is not None:
            (self.state / "expiry").write_text(expiry.isoformat().replace("+00:00", "Z"))

    @property
    def runs(self) -> list[dict[str, Any]]:
        log = self.state / "runs"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def user(self) -> dict[str, Any]:
        """The kubeconfig user: the command relative to the kubeconfig, as users write it."""
        return {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./plugin.py",
                "args": [str(self.state)],
                "env": [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}],
                "provideClusterInfo": True,
                "interactiveMode": "Never",
            }
        }


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "main",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 1000.0
        self.wall = EXPIRY - timedelta(hours=1)


@dataclass
class Client:
    kube: Kube
    connection: KubeConnection
    clocks: Clocks
    sent: list[str]


def client(kubeconfig: Path) -> Client:
    clocks, sent = Clocks(), []
    connection = KubeConnection(
        load_settings(str(kubeconfig)),
        maxsize=POOL_SIZE,
        retries=_TRANSPORT_RETRIES,
        clock=lambda: clocks.monotonic,
        wall=lambda: clocks.wall,
    )
    kube = Kube(connection, on_request=lambda verb, resource: sent.append(f"{verb} {resource}"))
    return Client(kube, connection, clocks, sent)


def tokens_seen(server: KubeServer) -> list[str | None]:
    """The bearer token of every request the emulator answered on the Secret, in order."""
    history = server.call(lambda emulator: list(emulator.history))
    return [
        (request.headers.get("Authorization") or "").removeprefix("Bearer ") or None
        for request in history
        if str(request.url.path) == SECRET
    ]


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path)


@pytest.fixture
def exec_client(kube_server: KubeServer, plugin: Plugin, kube_http: Any) -> Iterator[Client]:
    kube_http.request("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "s"}})
    plugin.answer("one")
    made = client(
        write_kubeconfig(plugin.directory / "kubeconfig", {"server": kube_server.url}, plugin.user())
    )
    try:
        yield made
    finally:
        made.connection.close()


def test_an_exec_plugin_runs_once_and_its_token_is_sent(
    exec_client: Client, plugin: Plugin, kube_server: KubeServer
) -> None:
    for _ in range(3):
        assert exec_client.kube.get(SECRET) is not None
    assert tokens_seen(kube_server) == ["one", "one", "one"]
    [run] = plugin.runs
    assert run["argv"] == [str(plugin.state)]
    assert run["env"] == "from-kubeconfig"
    assert run["info"] == {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": {"server": kube_server.url}},
    }


def test_an_exec_credential_is_kept_until_its_expiry_then_the_plugin_runs_again(
    exec_client: Client, plugin: Plugin, kube_server: KubeServer
) -> None:
    plugin.answer("one", expiry=EXPIRY)
    exec_client.kube.get(SECRET)
    plugin.answer("two", expiry=EXPIRY + timedelta(hours=1))
    exec_client.clocks.wall = EXPIRY - timedelta(seconds=1)
    exec_client.kube.get(SECRET)
    exec_client.clocks.wall = EXPIRY
    exec_client.kube.get(SECRET)
    exec_client.kube.get(SECRET)
    assert tokens_seen(kube_server) == ["one", "one", "two", "two"]
    assert len(plugin.runs) == 2
    assert connection_of(exec_client.connection).expiration == EXPIRY + timedelta(hours=1)  # for Kopf


def test_a_401_runs_the_plugin_again_and_sends_the_request_once_more(
    exec_client: Client, plugin: Plugin, kube_server: KubeServer
) -> None:
    exec_client.kube.get(SECRET)
    plugin.answer("two")  # the cluster revoked "one"
    kube_server.add_fault(Fault(re.compile(r"/secrets/s$"), "GET", 401, "Unauthorized", times=1))
    exec_client.sent.clear()
    assert exec_client.kube.get(SECRET) is not None
    assert tokens_seen(kube_server) == ["one", "one", "two"]
    assert exec_client.sent == ["get secrets", "get secrets"]  # both cost the API server
    assert len(plugin.runs) == 2


def test_a_401_the_plugin_cannot_cure_is_a_kube_error_after_one_more_run(
    exec_client: Client, plugin: Plugin, kube_server: KubeServer
) -> None:
    kube_server.add_fault(Fault(re.compile(r"/secrets/s$"), "GET", 401, "Unauthorized", times=None))
    with pytest.raises(KubeError) as refused:
        exec_client.kube.get(SECRET)
    assert refused.value.status == 401
    assert tokens_seen(kube_server) == ["one"]  # the same answer again: not sent twice
    assert len(plugin.runs) == 2


def test_a_failing_plugin_is_unavailable_naming_it_never_its_output(
    exec_client: Client, plugin: Plugin, kube_server: KubeServer
) -> None:
    (plugin.state / "exit").write_text("3")
    with pytest.raises(KubeUnavailable) as failed:
        exec_client.kube.get(SECRET)
    assert "plugin.py exited with status 3" in str(failed.value)
    assert "failure detail" not in str(failed.value)
    assert tokens_seen(kube_server) == []  # nothing was sent without credentials


def test_kopfs_login_gets_the_plugins_answer_as_it_is_now(exec_client: Client, plugin: Plugin) -> None:
    exec_client.kube.get(SECRET)
    plugin.answer("two", expiry=EXPIRY)
    assert connection_of(exec_client.connection).token == "one"
    renewed = connection_of(exec_client.connection, renew=True)  # Kopf's re-login after a 401
    assert (renewed.token, renewed.expiration) == ("two", EXPIRY)
    assert "two" not in repr(renewed)


# --- a kubeconfig tokenFile ----------------------------------------------------------------------


@pytest.fixture
def token_client(kube_server: KubeServer, tmp_path: Path, kube_http: Any) -> Iterator[tuple[Client, Path]]:
    kube_http.request("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "s"}})
    token = tmp_path / "token"
    token.write_text("one\n")
    made = client(
        write_kubeconfig(tmp_path / "kubeconfig", {"server": kube_server.url}, {"tokenFile": "token"})
    )
    try:
        yield made, token
    finally:
        made.connection.close()


def replace(path: Path, content: str) -> None:
    """As the kubelet does: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(content)
    os.replace(fresh, path)


def test_a_token_file_is_re_read_when_it_changes(
    token_client: tuple[Client, Path], kube_server: KubeServer
) -> None:
    made, token = token_client
    made.kube.get(SECRET)
    replace(token, "two")
    made.kube.get(SECRET)  # not looked at again yet
    made.clocks.monotonic += 10.0
    made.kube.get(SECRET)
    assert tokens_seen(kube_server) == ["one", "one", "two"]


def test_a_401_re_reads_the_token_file_at_once(
    token_client: tuple[Client, Path], kube_server: KubeServer
) -> None:
    made, token = token_client
    made.kube.get(SECRET)
    replace(token, "two")
    kube_server.add_fault(Fault(re.compile(r"/secrets/s$"), "GET", 401, "Unauthorized", times=1))
    assert made.kube.get(SECRET) is not None
    assert tokens_seen(kube_server) == ["one", "one", "two"]
    # Kopf's re-login reads the file too, whatever the clock says.
    replace(token, "three")
    assert connection_of(made.connection, renew=True).token == "three"


def test_a_401_with_the_token_file_unchanged_is_not_retried(
    token_client: tuple[Client, Path], kube_server: KubeServer
) -> None:
    made, _ = token_client
    kube_server.add_fault(Fault(re.compile(r"/secrets/s$"), "GET", 401, "Unauthorized", times=1))
    with pytest.raises(KubeError) as refused:
        made.kube.get(SECRET)
    assert (refused.value.status, made.sent) == (401, ["get secrets"])


# --- inline PEM data -----------------------------------------------------------------------------


def test_inline_certificates_are_private_files_removed_when_the_connection_closes(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    data = base64.b64encode(pem).decode()
    cluster = {"server": "https://127.0.0.1:1", "certificate-authority-data": data}
    user = {"client-certificate-data": data, "client-key-data": data}
    connection = KubeConnection(
        load_settings(str(write_kubeconfig(tmp_path / "kubeconfig", cluster, user))),
        maxsize=1,
        retries=_TRANSPORT_RETRIES,
    )
    credentials = connection.credentials()
    files = [connection.ca_path, credentials.cert_file, credentials.key_file]
    for path in files:
        assert path is not None
        assert Path(path).read_bytes() == pem
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(Path(str(files[0])).parent).st_mode) == 0o700
    connection.close()
    assert not [path for path in files if path is not None and Path(path).exists()]


# --- a server URL with a path (an API server behind a proxy) --------------------------------------


def test_a_server_url_with_a_path_prefixes_every_request(tmp_path: Path) -> None:
    def answer(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return 200, {"Content-Type": "application/json"}, b'{"kind": "NamespaceList", "items": []}'

    with Listener(answer) as server:
        cluster = {"server": f"{server.address}/k8s/clusters/c-1/"}
        connection = KubeConnection(
            load_settings(str(write_kubeconfig(tmp_path / "kubeconfig", cluster, {"token": "t"}))),
            maxsize=1,
            retries=_TRANSPORT_RETRIES,
        )
        answered = connection.request("GET", "/api/v1/namespaces", query={"limit": "1"})
        connection.close()
    assert answered.status == 200
    assert server.paths == ["/k8s/clusters/c-1/api/v1/namespaces?limit=1"]
