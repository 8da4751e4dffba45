"""rotator's own connection (rotator.kube_connection) against kube-apiserver itself: real TLS
(the cluster CA, tls-server-name, insecure-skip-tls-verify), client certificates from files and
from an exec plugin, and the in-cluster mount with a token file renewed on a real 401. Who the
server took each request for is asked of it (a SelfSubjectReview), not inferred.

The same behaviour on the emulator, with the clocks moved by hand: tests/integration/
test_kube_connection.py (whose plugin script and kubeconfig helpers these reuse).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rotator.kube import _TRANSPORT_RETRIES, POOL_SIZE, Kube, KubeUnavailable
from rotator.kube_connection import KubeConnection, load_settings
from rotator.sandbox.realkube import RealKubeServer
from tests.fixtures.realkube import Install
from tests.integration.test_kube_connection import EXPIRY, Clocks, Plugin, client, replace, write_kubeconfig

SELF = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
OPERATOR = "system:serviceaccount:rotator-system:rotator"


def whoami(kube: Kube) -> str:
    review = kube.request(
        "POST", SELF, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    return str(review["status"]["userInfo"]["username"])


def pem64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def connections() -> Iterator[list[KubeConnection]]:
    """Connections a test makes, closed after it."""
    made: list[KubeConnection] = []
    try:
        yield made
    finally:
        for connection in made:
            connection.close()


def connect(kubeconfig: Path, made: list[KubeConnection], **kwargs: Any) -> Kube:
    connection = KubeConnection(
        load_settings(str(kubeconfig)), maxsize=POOL_SIZE, retries=_TRANSPORT_RETRIES, **kwargs
    )
    made.append(connection)
    return Kube(connection)


def test_certificate_files_relative_to_the_kubeconfig(
    real_kube: RealKubeServer, tmp_path: Path, connections: list[KubeConnection]
) -> None:
    cert, key = real_kube.pki.issue("conn-files", "rotator-conn-files")
    pki = tmp_path / "pki"
    pki.mkdir()
    for source in (real_kube.pki.ca_path, cert, key):
        shutil.copy(source, pki / Path(source).name)
    cluster = {"server": real_kube.url, "certificate-authority": f"pki/{Path(real_kube.pki.ca_path).name}"}
    user = {"client-certificate": f"pki/{cert.name}", "client-key": f"pki/{key.name}"}
    kube = connect(write_kubeconfig(tmp_path / "kubeconfig", cluster, user), connections)
    assert whoami(kube) == "rotator-conn-files"


def test_tls_server_name_is_the_name_the_certificate_is_checked_against(
    real_kube: RealKubeServer, tmp_path: Path, connections: list[KubeConnection]
) -> None:
    cert, key = real_kube.pki.issue("conn-sni", "rotator-conn-sni")
    user = {"client-certificate-data": pem64(cert), "client-key-data": pem64(key)}
    ca = pem64(Path(real_kube.pki.ca_path))
    named = {
        "server": real_kube.url,
        "certificate-authority-data": ca,
        "tls-server-name": "kubernetes.default.svc",
    }
    assert (
        whoami(connect(write_kubeconfig(tmp_path / "named", named, user), connections)) == "rotator-conn-sni"
    )
    wrong = {**named, "tls-server-name": "not-the-api-server.example"}
    with pytest.raises(KubeUnavailable) as refused:
        whoami(connect(write_kubeconfig(tmp_path / "wrong", wrong, user), connections))
    assert refused.value.reason == "Unreachable"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_skip_tls_verify_connects_without_the_ca(
    real_kube: RealKubeServer, tmp_path: Path, connections: list[KubeConnection]
) -> None:
    cert, key = real_kube.pki.issue("conn-insecure", "rotator-conn-insecure")
    user = {"client-certificate-data": pem64(cert), "client-key-data": pem64(key)}
    verified = {"server": real_kube.url}  # no CA: the system's (certifi's) bundle does not know it
    with pytest.raises(KubeUnavailable):
        whoami(connect(write_kubeconfig(tmp_path / "verified", verified, user), connections))
    insecure = {**verified, "insecure-skip-tls-verify": True}
    assert whoami(connect(write_kubeconfig(tmp_path / "insecure", insecure, user), connections)) == (
        "rotator-conn-insecure"
    )


def test_an_exec_plugins_client_certificate_is_used_and_replaced_at_its_expiry(
    real_kube: RealKubeServer, tmp_path: Path, connections: list[KubeConnection]
) -> None:
    plugin = Plugin(tmp_path)
    for stem in ("first", "second"):
        cert, key = real_kube.pki.issue(f"conn-exec-{stem}", f"rotator-exec-{stem}")
        shutil.copy(cert, plugin.state / f"{stem}.crt")
        shutil.copy(key, plugin.state / f"{stem}.key")
    (plugin.state / "cert").write_text((plugin.state / "first.crt").read_text())
    (plugin.state / "key").write_text((plugin.state / "first.key").read_text())
    plugin.answer(expiry=EXPIRY)
    cluster = {"server": real_kube.url, "certificate-authority-data": pem64(Path(real_kube.pki.ca_path))}
    made = client(write_kubeconfig(tmp_path / "kubeconfig", cluster, plugin.user()))
    connections.append(made.connection)
    assert whoami(made.kube) == "rotator-exec-first"
    (plugin.state / "cert").write_text((plugin.state / "second.crt").read_text())
    (plugin.state / "key").write_text((plugin.state / "second.key").read_text())
    plugin.answer(expiry=EXPIRY + timedelta(hours=1))
    assert whoami(made.kube) == "rotator-exec-first"  # kept until it expires
    made.clocks.wall = EXPIRY
    assert whoami(made.kube) == "rotator-exec-second"  # a new certificate: new connections
    assert len(plugin.runs) == 2
    assert plugin.runs[0]["info"]["spec"]["cluster"]["server"] == real_kube.url


def test_an_exec_plugins_token_is_renewed_on_a_real_401(
    real_kube: RealKubeServer, install: Install, tmp_path: Path, connections: list[KubeConnection]
) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer("not-a-token-the-server-knows")
    cluster = {"server": real_kube.url, "certificate-authority-data": pem64(Path(real_kube.pki.ca_path))}
    made = client(write_kubeconfig(tmp_path / "kubeconfig", cluster, plugin.user()))
    connections.append(made.connection)
    made.connection.credentials()  # the plugin ran: its answer is cached
    plugin.answer(install.token())
    assert whoami(made.kube) == OPERATOR
    assert made.sent == ["create selfsubjectreviews", "create selfsubjectreviews"]  # 401, then again
    assert len(plugin.runs) == 2


def test_in_cluster_the_mounted_token_is_re_read_on_a_real_401(
    real_kube: RealKubeServer,
    install: Install,
    tmp_path: Path,
    connections: list[KubeConnection],
) -> None:
    """The pod's mount as the kubelet writes it, the API server as the Service's variables name
    it: the token read at start was replaced since (a rotation), the API server refuses it."""
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    shutil.copy(real_kube.pki.ca_path, mount / "ca.crt")
    (mount / "token").write_text("a-token-since-rotated")
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(real_kube.port)}
    clocks, sent = Clocks(), []
    connection = KubeConnection(
        load_settings(environ=env, in_cluster_dir=mount),
        maxsize=POOL_SIZE,
        retries=_TRANSPORT_RETRIES,
        clock=lambda: clocks.monotonic,
    )
    connections.append(connection)
    kube = Kube(connection, on_request=lambda verb, resource: sent.append(verb))
    replace(mount / "token", install.token())
    assert whoami(kube) == OPERATOR
    assert sent == ["create", "create"]
