"""Connection settings as tables (rotator.kubeconfig, pure): a kubeconfig (one or several files)
and a context become :class:`ConnectionSettings`, as do the in-cluster variables; an exec
plugin's output becomes an :class:`ExecCredential`; what rotator cannot honour is refused with
the kubeconfig field named. The I/O around them (reading kubeconfigs, token files, exec plugins,
requests) is in tests/unit/test_kube_connection.py and proven against servers in
tests/integration/test_kube_connection.py and tests/realkube/test_kube_connection_real.py."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rotator.kubeconfig import (
    ConnectionSettings,
    CredentialError,
    ExecConfig,
    KubeConfigError,
    exec_info,
    in_cluster_settings,
    merge_kubeconfigs,
    parse_exec_credential,
    settings_from_kubeconfig,
)

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
B64 = base64.b64encode(PEM).decode()
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def kubeconfig(
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    *,
    context: dict[str, Any] | None = None,
    current: str | None = "main",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://api.example:6443", **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "main", "context": context or {"cluster": "c", "user": "u"}}],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def settings(
    doc: dict[str, Any], context: str | None = None, path: str = "/cfg/kube/config"
) -> ConnectionSettings:
    return settings_from_kubeconfig(merge_kubeconfigs([(path, doc)]), context)


def without_source(found: ConnectionSettings) -> dict[str, Any]:
    fields = dict(vars(found))
    fields.pop("source")
    return fields


BASE = {"server": "https://api.example:6443", "ca_file": None, "ca_data": None, "insecure": False}
BASE |= {"tls_server_name": None, "client_cert_file": None, "client_cert_data": None}
BASE |= {"client_key_file": None, "client_key_data": None, "token": None, "token_file": None, "exec": None}

ACCEPTED = [
    ("server, its trailing slash dropped", {"server": "https://api.example:6443/"}, {}, {}),
    (
        "a path prefix kept",
        {"server": "https://proxy.example/k8s/c-1"},
        {},
        {"server": "https://proxy.example/k8s/c-1"},
    ),
    ("plain http", {"server": "http://127.0.0.1:8080"}, {}, {"server": "http://127.0.0.1:8080"}),
    (
        "certificate-authority, relative to the file",
        {"certificate-authority": "ca.crt"},
        {},
        {"ca_file": "/cfg/kube/ca.crt"},
    ),
    (
        "certificate-authority, absolute",
        {"certificate-authority": "/etc/ca.crt"},
        {},
        {"ca_file": "/etc/ca.crt"},
    ),
    ("certificate-authority-data", {"certificate-authority-data": B64}, {}, {"ca_data": PEM}),
    ("insecure-skip-tls-verify", {"insecure-skip-tls-verify": True}, {}, {"insecure": True}),
    (
        "tls-server-name",
        {"tls-server-name": "kubernetes.default.svc"},
        {},
        {"tls_server_name": "kubernetes.default.svc"},
    ),
    ("ignored: disable-compression and extensions", {"disable-compression": True, "extensions": []}, {}, {}),
    ("token", {}, {"token": "t0k"}, {"token": "t0k"}),
    ("tokenFile, relative to the file", {}, {"tokenFile": "../token"}, {"token_file": "/cfg/token"}),
    ("tokenFile wins over token (as client-go)", {}, {"token": "t", "tokenFile": "/t"}, {"token_file": "/t"}),
    (
        "client-certificate and client-key files",
        {},
        {"client-certificate": "tls/c.crt", "client-key": "/k.key"},
        {"client_cert_file": "/cfg/kube/tls/c.crt", "client_key_file": "/k.key"},
    ),
    (
        "client-certificate-data and client-key-data",
        {},
        {"client-certificate-data": B64, "client-key-data": B64},
        {"client_cert_data": PEM, "client_key_data": PEM},
    ),
    (
        "a certificate file with key data",
        {},
        {"client-certificate": "/c.crt", "client-key-data": B64},
        {"client_cert_file": "/c.crt", "client_key_data": PEM},
    ),
    (
        "exec v1: command on the PATH, args, env",
        {},
        {
            "exec": {
                "apiVersion": V1,
                "command": "aws",
                "args": ["eks", "get-token"],
                "env": [{"name": "AWS_PROFILE", "value": "ops"}],
                "interactiveMode": "Never",
            }
        },
        {"exec": ExecConfig("aws", V1, ("eks", "get-token"), (("AWS_PROFILE", "ops"),))},
    ),
    (
        "exec v1beta1: a relative command path is next to the kubeconfig",
        {},
        {"exec": {"apiVersion": V1BETA1, "command": "./bin/plugin", "interactiveMode": "IfAvailable"}},
        {"exec": ExecConfig("/cfg/kube/bin/plugin", V1BETA1)},
    ),
    (
        "exec with a static client certificate (the plugin gives the token)",
        {},
        {"exec": {"apiVersion": V1, "command": "p"}, "client-certificate": "/c", "client-key": "/k"},
        {"exec": ExecConfig("p", V1), "client_cert_file": "/c", "client_key_file": "/k"},
    ),
    ("ignored: extensions of the user", {}, {"token": "t", "extensions": []}, {"token": "t"}),
]


@pytest.mark.parametrize(
    ("cluster", "user", "expected"), [row[1:] for row in ACCEPTED], ids=[row[0] for row in ACCEPTED]
)
def test_kubeconfig_fields_become_settings(
    cluster: dict[str, Any], user: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert without_source(settings(kubeconfig(cluster, user))) == BASE | expected


def test_exec_with_provide_cluster_info_passes_the_cluster_and_its_extension() -> None:
    extension = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}
    cluster = {"certificate-authority-data": B64, "tls-server-name": "k", "extensions": [extension]}
    user = {"exec": {"apiVersion": V1, "command": "p", "provideClusterInfo": True}}
    config = settings(kubeconfig(cluster, user)).exec
    assert config is not None
    info = json.loads(exec_info(config))
    assert info == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": "https://api.example:6443",
                "tls-server-name": "k",
                "certificate-authority-data": B64,
                "config": {"audience": "x"},
            },
        },
    }


def test_exec_info_without_cluster_info_and_a_ca_file_read_for_the_plugin() -> None:
    plain = ExecConfig("p", V1BETA1)
    assert json.loads(exec_info(plain)) == {
        "apiVersion": V1BETA1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    with_cluster = ExecConfig("p", V1, cluster={"server": "https://s"})
    assert json.loads(exec_info(with_cluster, PEM))["spec"]["cluster"] == {
        "server": "https://s",
        "certificate-authority-data": B64,
    }


def test_the_context_argument_picks_another_context_and_its_namespace_is_irrelevant() -> None:
    doc = kubeconfig(user={"token": "main-token"})
    doc["clusters"].append({"name": "other", "cluster": {"server": "https://other:443"}})
    doc["users"].append({"name": "other", "user": {"token": "other-token"}})
    doc["contexts"].append({"name": "o", "context": {"cluster": "other", "user": "other", "namespace": "x"}})
    assert (settings(doc).server, settings(doc).token) == ("https://api.example:6443", "main-token")
    picked = settings(doc, "o")
    assert (picked.server, picked.token) == ("https://other:443", "other-token")
    assert picked.source == "kubeconfig /cfg/kube/config, context o"


def test_a_context_without_a_user_is_anonymous() -> None:
    found = settings(kubeconfig(context={"cluster": "c"}))
    assert (found.token, found.token_file, found.exec, found.client_cert_file) == (None, None, None, None)


def test_several_files_merge_first_wins_and_paths_stay_relative_to_their_own_file() -> None:
    first = {
        "clusters": [{"name": "c", "cluster": {"server": "https://first", "certificate-authority": "ca"}}],
        "users": [],
        "contexts": [],
    }
    second = kubeconfig(
        {"server": "https://second", "certificate-authority": "ignored"}, {"tokenFile": "tok"}, current="main"
    )
    merged = merge_kubeconfigs([("/a/config", first), ("/b/config", second), ("/c/empty", None)])
    found = settings_from_kubeconfig(merged, None)
    assert (found.server, found.ca_file, found.token_file) == ("https://first", "/a/ca", "/b/tok")
    assert found.source == "kubeconfig /a/config, /b/config, /c/empty, context main"
    with_current = merge_kubeconfigs([("/a", {"current-context": "x"}), ("/b", second)])
    assert with_current.current_context == "x"


REFUSED = [
    ("legacy auth-provider", {}, {"auth-provider": {"name": "gcp"}}, "users[name=u].user.auth-provider"),
    ("basic auth username", {}, {"username": "a", "password": "b"}, "users[name=u].user.username"),
    ("impersonation", {}, {"token": "t", "as": "admin"}, "users[name=u].user.as is not supported"),
    ("impersonated groups", {}, {"token": "t", "as-groups": ["g"]}, "users[name=u].user.as-groups"),
    ("a proxy", {"proxy-url": "http://proxy:3128"}, {}, "clusters[name=c].cluster.proxy-url"),
    ("no server", {"server": ""}, {}, "clusters[name=c].cluster.server is missing"),
    (
        "not a URL",
        {"server": "api.example:6443"},
        {},
        "clusters[name=c].cluster.server must be an http(s)://",
    ),
    (
        "both CA file and data",
        {"certificate-authority": "/ca", "certificate-authority-data": B64},
        {},
        "both certificate-authority and certificate-authority-data",
    ),
    (
        "insecure with a CA",
        {"insecure-skip-tls-verify": True, "certificate-authority-data": B64},
        {},
        "insecure-skip-tls-verify with a certificate-authority",
    ),
    (
        "insecure not a boolean",
        {"insecure-skip-tls-verify": "yes"},
        {},
        "insecure-skip-tls-verify must be true",
    ),
    (
        "bad base64",
        {"certificate-authority-data": "not base64!"},
        {},
        "certificate-authority-data is not valid",
    ),
    (
        "bad key base64",
        {},
        {"client-certificate-data": B64, "client-key-data": "%%"},
        "client-key-data is not",
    ),
    ("a certificate without a key", {}, {"client-certificate": "/c"}, "needs both client-certificate and"),
    ("a key without a certificate", {}, {"client-key-data": B64}, "needs both client-certificate and"),
    (
        "both certificate file and data",
        {},
        {"client-certificate": "/c", "client-certificate-data": B64, "client-key": "/k"},
        "both client-certificate and client-certificate-data",
    ),
    (
        "both key file and data",
        {},
        {"client-certificate": "/c", "client-key": "/k", "client-key-data": B64},
        "both client-key",
    ),
    ("a token that is not a string", {}, {"token": 123}, "users[name=u].user.token must be a string"),
    (
        "exec v1alpha1",
        {},
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "p"}},
        "exec.apiVersion",
    ),
    ("exec without apiVersion", {}, {"exec": {"command": "p"}}, "exec.apiVersion must be one of"),
    (
        "exec without a command",
        {},
        {"exec": {"apiVersion": V1}},
        "users[name=u].user.exec.command is missing",
    ),
    (
        "exec args not strings",
        {},
        {"exec": {"apiVersion": V1, "command": "p", "args": [1]}},
        "exec.args must be",
    ),
    (
        "exec env without a name",
        {},
        {"exec": {"apiVersion": V1, "command": "p", "env": [{"value": "v"}]}},
        "exec.env[0]",
    ),
    (
        "exec that must prompt",
        {},
        {"exec": {"apiVersion": V1, "command": "p", "interactiveMode": "Always"}},
        "exec.interactiveMode is Always",
    ),
    (
        "exec mode unknown",
        {},
        {"exec": {"apiVersion": V1, "command": "p", "interactiveMode": "Sometimes"}},
        "interactiveMode must be",
    ),
    (
        "exec and a token",
        {},
        {"exec": {"apiVersion": V1, "command": "p"}, "token": "t"},
        "exec and token/tokenFile",
    ),
    ("exec not a mapping", {}, {"exec": "p"}, "users[name=u].user.exec must be a mapping"),
]


@pytest.mark.parametrize(
    ("cluster", "user", "message"), [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED]
)
def test_what_rotator_cannot_honour_is_refused_naming_the_field(
    cluster: dict[str, Any], user: dict[str, Any], message: str
) -> None:
    with pytest.raises(KubeConfigError) as refused:
        settings(kubeconfig(cluster, user))
    assert message in str(refused.value)
    assert str(refused.value).startswith("kubeconfig /cfg/kube/config, context main: ")


CONTEXT_REFUSALS = [
    (
        "no current-context",
        kubeconfig(current=None),
        None,
        "current-context is not set and no context was given",
    ),
    ("an unknown context", kubeconfig(), "nope", "no context named 'nope' (contexts[].name)"),
    (
        "a context without a cluster",
        kubeconfig(context={"user": "u"}),
        None,
        "contexts[name=main].context.cluster is missing",
    ),
    (
        "a context naming a missing cluster",
        kubeconfig(context={"cluster": "gone", "user": "u"}),
        None,
        "context.cluster names 'gone', which is not in clusters[].name",
    ),
    (
        "a context naming a missing user",
        kubeconfig(context={"cluster": "c", "user": "gone"}),
        None,
        "context.user names 'gone', which is not in users[].name",
    ),
    (
        "clusters not a list",
        {"clusters": {"c": {}}, "current-context": "main"},
        None,
        "clusters must be a list",
    ),
    ("an entry without a name", {"users": [{"user": {}}]}, None, "users[0].name is missing"),
    (
        "an entry not a mapping",
        {"clusters": [{"name": "c", "cluster": "x"}]},
        None,
        "clusters[name=c].cluster must be",
    ),
]


@pytest.mark.parametrize(
    ("doc", "context", "message"),
    [row[1:] for row in CONTEXT_REFUSALS],
    ids=[row[0] for row in CONTEXT_REFUSALS],
)
def test_a_missing_context_cluster_or_user_is_refused_naming_it(
    doc: dict[str, Any], context: str | None, message: str
) -> None:
    with pytest.raises(KubeConfigError) as refused:
        settings(doc, context)
    assert message in str(refused.value)
    assert "/cfg/kube/config" in str(refused.value)


def test_a_token_never_shows_in_the_settings_repr() -> None:
    found = settings(kubeconfig(user={"token": "s3cr3t", "client-certificate": "/c", "client-key-data": B64}))
    assert "s3cr3t" not in repr(found)
    assert "MIIB" not in repr(found)


# --- in-cluster ----------------------------------------------------------------------------------

IN_CLUSTER = [
    (
        "IPv4",
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        "https://10.96.0.1:443",
    ),
    (
        "IPv6 in brackets",
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
        "https://[fd00::1]:443",
    ),
]


@pytest.mark.parametrize(
    ("env", "server"), [row[1:] for row in IN_CLUSTER], ids=[row[0] for row in IN_CLUSTER]
)
def test_in_cluster_settings_come_from_the_service_variables_and_the_mount(
    env: dict[str, str], server: str
) -> None:
    found = in_cluster_settings(env, Path("/sa"))
    assert (found.server, found.ca_file, found.token_file) == (server, "/sa/ca.crt", "/sa/token")
    assert found.source == "the in-cluster service account"


@pytest.mark.parametrize(
    "env", [{}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT": "443"}]
)
def test_outside_a_pod_there_are_no_in_cluster_settings(env: dict[str, str]) -> None:
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is unset"):
        in_cluster_settings(env)


# --- exec plugin output --------------------------------------------------------------------------


def credential(status: Any, api_version: str = V1, kind: str = "ExecCredential") -> bytes:
    return json.dumps({"apiVersion": api_version, "kind": kind, "status": status}).encode()


EXEC_ANSWERS = [
    ("a token", credential({"token": "t"}), ("t", None, None, None)),
    (
        "a token with its expiry",
        credential({"token": "t", "expirationTimestamp": "2030-01-02T03:04:05Z"}),
        ("t", None, None, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ),
    (
        "an expiry with fractions and an offset",
        credential({"token": "t", "expirationTimestamp": "2030-01-02T05:04:05.5+02:00"}),
        ("t", None, None, datetime(2030, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
    ),
    (
        "a client certificate",
        credential({"clientCertificateData": "CERT", "clientKeyData": "KEY"}),
        (None, "CERT", "KEY", None),
    ),
]


@pytest.mark.parametrize(
    ("output", "expected"), [row[1:] for row in EXEC_ANSWERS], ids=[row[0] for row in EXEC_ANSWERS]
)
def test_an_exec_credential_is_read(output: bytes, expected: tuple[Any, ...]) -> None:
    answer = parse_exec_credential(output, V1, "plugin")
    assert (
        answer.token,
        answer.client_certificate_data,
        answer.client_key_data,
        answer.expiration,
    ) == expected
    assert "KEY" not in repr(answer)
    assert "'t'" not in repr(answer)


EXEC_REFUSALS = [
    ("not JSON", b"Error: please log in", "exec plugin plugin printed no JSON ExecCredential"),
    ("another kind", credential({"token": "t"}, kind="Status"), "printed no ExecCredential (kind)"),
    ("another apiVersion", credential({"token": "t"}, V1BETA1), f"answered apiVersion '{V1BETA1}', not {V1}"),
    ("no status", credential(None), "answered no status"),
    ("only the certificate", credential({"clientCertificateData": "C"}), "only one of clientCertificateData"),
    ("nothing", credential({"expirationTimestamp": "2030-01-01T00:00:00Z"}), "neither a token nor"),
    ("a token not a string", credential({"token": 5}), "not a string"),
    ("a bad expiry", credential({"token": "t", "expirationTimestamp": "tomorrow"}), "not RFC 3339"),
]


@pytest.mark.parametrize(
    ("output", "message"), [row[1:] for row in EXEC_REFUSALS], ids=[row[0] for row in EXEC_REFUSALS]
)
def test_an_exec_answer_that_cannot_be_used_is_refused_without_quoting_it(
    output: bytes, message: str
) -> None:
    with pytest.raises(CredentialError) as refused:
        parse_exec_credential(output, V1, "plugin")
    assert message in str(refused.value)
    assert "please log in" not in str(refused.value)
