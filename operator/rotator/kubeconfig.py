"""Connection settings, parsed: what a kubeconfig, the in-cluster variables or an exec plugin says.

Pure: text already read becomes values, and nothing here opens a file, runs a plugin or sends a
request; :mod:`rotator.kube_connection` does that with what this module decides. Kept apart so
each refusal is a table row in tests/unit/test_kubeconfig.py, without files or servers.

- A kubeconfig document (or several, ``$KUBECONFIG`` is a list) and a context name become
  :class:`ConnectionSettings`; so do the in-cluster service variables. Anything rotator cannot
  honour (the legacy ``auth-provider``, basic auth, impersonation, a proxy) is a
  :class:`KubeConfigError` naming the kubeconfig field, never silently ignored.
- An exec plugin's request (KUBERNETES_EXEC_INFO) is built here, and its output becomes an
  :class:`ExecCredential` or a :class:`CredentialError` that names the plugin, never its output.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

IN_CLUSTER_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""The service account's token and CA bundle, as the kubelet mounts them in every pod."""

EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")

JsonObject = dict[str, Any]


class KubeConfigError(ValueError):
    """The connection settings cannot be used; the message names the kubeconfig field."""


class CredentialError(Exception):
    """Credentials could not be obtained now (an exec plugin failed): the request was not sent.
    The message names the plugin, never its output."""


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecConfig:
    """A kubeconfig ``users[].user.exec``: a command that prints an ExecCredential."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: ``spec.cluster`` of KUBERNETES_EXEC_INFO when ``provideClusterInfo`` is set, else None.
    cluster: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the API server is and how to authenticate to it, as configured (files not read)."""

    server: str
    #: Where these came from, for messages: "the in-cluster service account" or a kubeconfig.
    source: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    client_cert_file: str | None = None
    client_cert_data: bytes | None = None
    client_key_file: str | None = None
    client_key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    exec: ExecConfig | None = None


@dataclass(frozen=True)
class KubeConfig:
    """One or more kubeconfig documents merged as kubectl does: the first file to name a
    cluster, context or user wins, and so does the first ``current-context``. Each cluster and
    user keeps the directory of its file: relative paths in it are relative to that."""

    sources: tuple[str, ...]
    current_context: str | None
    clusters: Mapping[str, tuple[Mapping[str, Any], str]]
    contexts: Mapping[str, Mapping[str, Any]]
    users: Mapping[str, tuple[Mapping[str, Any], str]]


def merge_kubeconfigs(documents: Sequence[tuple[str, Any]]) -> KubeConfig:
    """``documents``: (path, parsed YAML) in ``$KUBECONFIG`` order; an empty file is None."""
    current: str | None = None
    clusters: dict[str, tuple[Mapping[str, Any], str]] = {}
    contexts: dict[str, Mapping[str, Any]] = {}
    users: dict[str, tuple[Mapping[str, Any], str]] = {}
    for path, document in documents:
        doc = document if document is not None else {}
        if not isinstance(doc, Mapping):
            raise KubeConfigError(f"kubeconfig {path}: not a mapping")
        base = str(Path(path).parent)
        current = current or _optional_str(doc, "current-context", path) or None
        for name, entry in _named(doc, "clusters", "cluster", path):
            clusters.setdefault(name, (entry, base))
        for name, entry in _named(doc, "contexts", "context", path):
            contexts.setdefault(name, entry)
        for name, entry in _named(doc, "users", "user", path):
            users.setdefault(name, (entry, base))
    return KubeConfig(tuple(path for path, _ in documents), current, clusters, contexts, users)


def _named(doc: Mapping[str, Any], key: str, inner: str, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise KubeConfigError(f"kubeconfig {path}: {key} must be a list")
    found = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise KubeConfigError(f"kubeconfig {path}: {key}[{index}].name is missing")
        entry = item.get(inner)
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise KubeConfigError(f"kubeconfig {path}: {key}[name={name}].{inner} must be a mapping")
        found.append((name, entry))
    return found


_UNSUPPORTED_USER: Final = {
    "auth-provider": "the legacy auth-provider plugins were removed from kubectl 1.26; use an exec "
    "credential plugin (users[].user.exec)",
    "username": "basic authentication was removed from kube-apiserver 1.19",
    "password": "basic authentication was removed from kube-apiserver 1.19",
    "as": "impersonation is not supported: give rotator its own identity",
    "as-uid": "impersonation is not supported: give rotator its own identity",
    "as-groups": "impersonation is not supported: give rotator its own identity",
    "as-user-extra": "impersonation is not supported: give rotator its own identity",
}

_UNSUPPORTED_CLUSTER: Final = {
    "proxy-url": "rotator connects to the API server directly",
}


def settings_from_kubeconfig(config: KubeConfig, context: str | None = None) -> ConnectionSettings:
    """The settings of ``context`` (else ``current-context``) of a merged kubeconfig."""
    files = ", ".join(config.sources) or "(none)"
    name = context or config.current_context
    if not name:
        raise KubeConfigError(f"kubeconfig {files}: current-context is not set and no context was given")
    if name not in config.contexts:
        raise KubeConfigError(f"kubeconfig {files}: no context named {name!r} (contexts[].name)")
    source = f"kubeconfig {files}, context {name}"
    ctx = config.contexts[name]
    cluster_name = _optional_str(ctx, "cluster", f"{source}: contexts[name={name}].context")
    if not cluster_name:
        raise KubeConfigError(f"{source}: contexts[name={name}].context.cluster is missing")
    if cluster_name not in config.clusters:
        raise KubeConfigError(
            f"{source}: contexts[name={name}].context.cluster names {cluster_name!r}, "
            "which is not in clusters[].name"
        )
    cluster, cluster_dir = config.clusters[cluster_name]
    where = f"{source}: clusters[name={cluster_name}].cluster"
    for key, why in _UNSUPPORTED_CLUSTER.items():
        if cluster.get(key):
            raise KubeConfigError(f"{where}.{key} is not supported ({why})")
    server = _optional_str(cluster, "server", where)
    if not server:
        raise KubeConfigError(f"{where}.server is missing")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"{where}.server must be an http(s):// URL, not {server!r}")
    ca_file = _path(cluster, "certificate-authority", cluster_dir, where)
    ca_data = _base64(cluster, "certificate-authority-data", where)
    if ca_file and ca_data:
        raise KubeConfigError(f"{where}: both certificate-authority and certificate-authority-data are set")
    insecure = cluster.get("insecure-skip-tls-verify") or False
    if not isinstance(insecure, bool):
        raise KubeConfigError(f"{where}.insecure-skip-tls-verify must be true or false")
    if insecure and (ca_file or ca_data):
        raise KubeConfigError(
            f"{where}: insecure-skip-tls-verify with a certificate-authority: verify, or do not"
        )
    settings = ConnectionSettings(
        server=server.rstrip("/"),
        source=source,
        ca_file=ca_file,
        ca_data=ca_data,
        insecure=insecure,
        tls_server_name=_optional_str(cluster, "tls-server-name", where) or None,
    )
    user_name = _optional_str(ctx, "user", f"{source}: contexts[name={name}].context")
    if not user_name:
        return settings  # anonymous
    if user_name not in config.users:
        raise KubeConfigError(
            f"{source}: contexts[name={name}].context.user names {user_name!r}, which is not in users[].name"
        )
    user, user_dir = config.users[user_name]
    return _with_user(settings, user, user_dir, f"{source}: users[name={user_name}].user", cluster)


def _with_user(
    settings: ConnectionSettings,
    user: Mapping[str, Any],
    base: str,
    where: str,
    cluster: Mapping[str, Any],
) -> ConnectionSettings:
    for key, why in _UNSUPPORTED_USER.items():
        if user.get(key):
            raise KubeConfigError(f"{where}.{key} is not supported ({why})")
    cert_file = _path(user, "client-certificate", base, where)
    cert_data = _base64(user, "client-certificate-data", where)
    key_file = _path(user, "client-key", base, where)
    key_data = _base64(user, "client-key-data", where)
    if cert_file and cert_data:
        raise KubeConfigError(f"{where}: both client-certificate and client-certificate-data are set")
    if key_file and key_data:
        raise KubeConfigError(f"{where}: both client-key and client-key-data are set")
    if bool(cert_file or cert_data) != bool(key_file or key_data):
        raise KubeConfigError(f"{where}: a client certificate needs both client-certificate and client-key")
    token = _optional_str(user, "token", where) or None
    token_file = _path(user, "tokenFile", base, where)
    exec_config = _exec(user.get("exec"), base, f"{where}.exec", cluster)
    if exec_config is not None and (token or token_file):
        raise KubeConfigError(f"{where}: exec and token/tokenFile are both set; use one")
    return ConnectionSettings(
        server=settings.server,
        source=settings.source,
        ca_file=settings.ca_file,
        ca_data=settings.ca_data,
        insecure=settings.insecure,
        tls_server_name=settings.tls_server_name,
        client_cert_file=cert_file,
        client_cert_data=cert_data,
        client_key_file=key_file,
        client_key_data=key_data,
        # As client-go: a tokenFile, re-read as it changes, takes precedence over a token.
        token=None if token_file else token,
        token_file=token_file,
        exec=exec_config,
    )


def _exec(raw: Any, base: str, where: str, cluster: Mapping[str, Any]) -> ExecConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise KubeConfigError(f"{where} must be a mapping")
    api_version = raw.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise KubeConfigError(
            f"{where}.apiVersion must be one of {', '.join(EXEC_API_VERSIONS)}, not {api_version!r}"
        )
    command = _optional_str(raw, "command", where)
    if not command:
        raise KubeConfigError(f"{where}.command is missing")
    if os.sep in command and not os.path.isabs(command):
        command = os.path.normpath(os.path.join(base, command))  # as kubectl: next to the kubeconfig
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeConfigError(f"{where}.args must be a list of strings")
    env = []
    for index, item in enumerate(raw.get("env") or []):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise KubeConfigError(f"{where}.env[{index}] needs a name and a value")
        env.append((str(item["name"]), str(item.get("value") or "")))
    mode = raw.get("interactiveMode") or "IfAvailable"
    if mode not in ("Never", "IfAvailable", "Always"):
        raise KubeConfigError(f"{where}.interactiveMode must be Never, IfAvailable or Always, not {mode!r}")
    if mode == "Always":
        raise KubeConfigError(f"{where}.interactiveMode is Always, but rotator has no terminal to prompt on")
    provide = raw.get("provideClusterInfo") or False
    if not isinstance(provide, bool):
        raise KubeConfigError(f"{where}.provideClusterInfo must be true or false")
    return ExecConfig(
        command=command,
        api_version=str(api_version),
        args=tuple(args),
        env=tuple(env),
        cluster=_exec_cluster(cluster) if provide else None,
    )


def _exec_cluster(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec.cluster`` of an ExecCredential request: the kubeconfig cluster's connection
    fields, and the plugin's own extension as ``config``."""
    found: JsonObject = {
        key: cluster[key]
        for key in (
            "server",
            "tls-server-name",
            "insecure-skip-tls-verify",
            "certificate-authority-data",
            "disable-compression",
        )
        if key in cluster
    }
    for extension in cluster.get("extensions") or []:
        if isinstance(extension, Mapping) and extension.get("name") == "client.authentication.k8s.io/exec":
            found["config"] = extension.get("extension")
    return found


def _optional_str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeConfigError(f"{where}.{key} must be a string")
    return value


def _path(entry: Mapping[str, Any], key: str, base: str, where: str) -> str | None:
    value = _optional_str(entry, key, where)
    if not value:
        return None
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))


def _base64(entry: Mapping[str, Any], key: str, where: str) -> bytes | None:
    value = _optional_str(entry, key, where)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KubeConfigError(f"{where}.{key} is not valid base64") from None


def in_cluster_settings(environ: Mapping[str, str], directory: Path = IN_CLUSTER_DIR) -> ConnectionSettings:
    """The pod's own service account: the API server from the ``kubernetes`` Service's
    variables, the token and CA bundle the kubelet mounts (read later, by the connection)."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeConfigError("not in a pod: KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is unset")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return ConnectionSettings(
        server=f"https://{host}:{port}",
        source="the in-cluster service account",
        ca_file=str(directory / "ca.crt"),
        token_file=str(directory / "token"),
    )


# --- exec credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecCredential:
    """What an exec plugin answered: a token, or a client certificate and key (PEM)."""

    token: str | None = field(default=None, repr=False)
    client_certificate_data: str | None = None
    client_key_data: str | None = field(default=None, repr=False)
    expiration: datetime | None = None


def exec_info(config: ExecConfig, ca_data: bytes | None = None) -> str:
    """The KUBERNETES_EXEC_INFO a plugin reads: rotator never has a terminal to prompt on."""
    spec: JsonObject = {"interactive": False}
    if config.cluster is not None:
        cluster = dict(config.cluster)
        if ca_data is not None and "certificate-authority-data" not in cluster:
            cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
        spec["cluster"] = cluster
    return json.dumps({"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec})


def parse_exec_credential(output: bytes, api_version: str, command: str) -> ExecCredential:
    """Judge an exec plugin's stdout; errors name the plugin, never quote its output."""
    where = f"exec plugin {command}"
    try:
        answer = json.loads(output)
    except ValueError:
        raise CredentialError(f"{where} printed no JSON ExecCredential") from None
    if not isinstance(answer, Mapping) or answer.get("kind") != "ExecCredential":
        raise CredentialError(f"{where} printed no ExecCredential (kind)")
    if answer.get("apiVersion") != api_version:
        raise CredentialError(
            f"{where} answered apiVersion {answer.get('apiVersion')!r}, not {api_version} as asked"
        )
    status = answer.get("status")
    if not isinstance(status, Mapping):
        raise CredentialError(f"{where} answered no status")
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData") or None, status.get("clientKeyData") or None
    if bool(cert) != bool(key):
        raise CredentialError(f"{where} answered only one of clientCertificateData and clientKeyData")
    if not token and not cert:
        raise CredentialError(f"{where} answered neither a token nor clientCertificateData")
    if not all(value is None or isinstance(value, str) for value in (token, cert, key)):
        raise CredentialError(f"{where} answered a token or certificate that is not a string")
    expiration = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expiration = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise CredentialError(f"{where} answered an expirationTimestamp that is not RFC 3339") from None
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
    return ExecCredential(token, cert, key, expiration)
