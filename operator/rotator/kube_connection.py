"""Where and how the operator reaches the Kubernetes API, and one request at a time over urllib3.

``rotator.kube`` used the official ``kubernetes`` client for this; importing it loads every
generated model (~35 MiB of RSS) and its ``call_api`` spent 1-2 ms of CPU a request (issue 11).
What rotator needs of it is small: the connection settings (in-cluster, or a kubeconfig) and a
pooled HTTPS request with a bearer token or a client certificate. So that is all this module does.

Two halves:

- **Parsing, pure** (tables in tests/unit/test_kube_connection.py): a kubeconfig document (or
  several, ``$KUBECONFIG`` is a list) and a context name become :class:`ConnectionSettings`; an
  exec plugin's output becomes an :class:`ExecCredential`. Anything rotator cannot honour (the
  legacy ``auth-provider``, basic auth, impersonation, a proxy) is a :class:`KubeConfigError`
  naming the kubeconfig field, never silently ignored.
- **I/O**: :func:`load_settings` finds the settings (an explicit kubeconfig, else the in-cluster
  service account, else ``$KUBECONFIG`` or ``~/.kube/config``), and :class:`KubeConnection` sends
  requests with credentials that stay current: a token file (the in-cluster bound token, a
  kubeconfig ``tokenFile``) is re-read when it changes, an exec plugin re-runs when its
  credential expires, and both are renewed on a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import urllib3
import yaml
from urllib3.util.retry import Retry

IN_CLUSTER_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""The service account's token and CA bundle, as the kubelet mounts them in every pod."""

TOKEN_RECHECK_SECONDS: Final = 10.0
"""How often a token file is looked at again. A bound service-account token is rotated by the
kubelet at 80 % of its lifetime (48 min of 1 h), so a change is seen long before the old token
expires; a 401 re-reads it at once anyway."""

EXEC_TIMEOUT_SECONDS: Final = 60.0
"""An exec credential plugin that hangs must not hold every request of the process behind it."""

EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")

USER_AGENT: Final = "rotator"

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


# --- credentials at run time ---------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What the next request authenticates with."""

    token: str | None = field(default=None, repr=False)
    #: A client certificate and its key (files).
    files: tuple[str, str] | None = None
    #: When an exec plugin said the credential stops working (Kopf logs in again by then).
    expiration: datetime | None = None

    @property
    def cert_file(self) -> str | None:
        return self.files[0] if self.files else None

    @property
    def key_file(self) -> str | None:
        return self.files[1] if self.files else None


class Scratch:
    """A private directory (0700) for the PEM data a kubeconfig or an exec plugin gives inline:
    TLS libraries (ssl, Kopf's aiohttp) load a client certificate from files. Removed when the
    connection is closed or collected, or at exit."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def write(self, stem: str, data: bytes) -> str:
        with self._lock:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="rotator-kube-")
                self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
            self._count += 1
            path = os.path.join(self._dir, f"{stem}-{self._count}.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        return path

    def remove(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


class TokenFile:
    """A bearer token kept in a file that its owner replaces (the kubelet's projected token):
    looked at again every ``recheck`` seconds and re-read when it changed; ``renew`` re-reads it
    now. A read that fails keeps the last token (the file is briefly absent while replaced)."""

    def __init__(
        self,
        path: str,
        *,
        recheck: float = TOKEN_RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._recheck = recheck
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._token = ""
        self._next_check = 0.0
        if not self._read():
            raise KubeConfigError(f"token file {path} is missing or empty")

    def token(self) -> str:
        if self._clock() >= self._next_check:
            with self._lock:
                self._read(only_if_changed=True)
        return self._token

    def renew(self) -> bool:
        """Re-read now; True when the token changed."""
        with self._lock:
            before = self._token
            self._read()
            return self._token != before

    def _read(self, *, only_if_changed: bool = False) -> bool:
        self._next_check = self._clock() + self._recheck
        try:
            stat = os.stat(self.path)
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if only_if_changed and seen == self._seen:
                return True
            token = Path(self.path).read_text().strip()
        except OSError:
            return False
        if not token:
            return False
        self._seen, self._token = seen, token
        return True


ExecRunner = Callable[[Sequence[str], Mapping[str, str]], bytes]
"""Runs a plugin (argv, environment) and returns its stdout; raises CredentialError."""


def run_plugin(argv: Sequence[str], env: Mapping[str, str]) -> bytes:
    """Its stderr goes to the operator's (a plugin explains itself there, as under kubectl)."""
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=EXEC_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialError(f"exec plugin {argv[0]} was not found") from None
    except subprocess.TimeoutExpired:
        raise CredentialError(f"exec plugin {argv[0]} ran longer than {EXEC_TIMEOUT_SECONDS:.0f} s") from None
    except OSError as exc:
        raise CredentialError(f"exec plugin {argv[0]} could not run: {type(exc).__name__}") from None
    if done.returncode != 0:
        raise CredentialError(f"exec plugin {argv[0]} exited with status {done.returncode}")
    return done.stdout


class ExecAuth:
    """An exec credential plugin's answer, kept until its ``expirationTimestamp`` (forever
    without one); ``renew`` (after a 401) runs the plugin again."""

    def __init__(
        self,
        config: ExecConfig,
        scratch: Scratch,
        *,
        ca_data: bytes | None = None,
        run: ExecRunner = run_plugin,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._scratch = scratch
        self._info = exec_info(config, ca_data)
        self._run = run
        self._wall = wall
        self._lock = threading.Lock()
        #: The plugin's answer and, for a certificate, its (cert, key) files: one tuple, so a
        #: reader never pairs one answer with another's files.
        self._state: tuple[ExecCredential, tuple[str, str] | None] | None = None

    def credential(self) -> tuple[ExecCredential, tuple[str, str] | None]:
        state = self._state
        if state is not None and not self._expired(state[0]):
            return state
        with self._lock:
            if self._state is None or self._expired(self._state[0]):
                self._refresh()
            assert self._state is not None
            return self._state

    def renew(self) -> bool:
        """Run the plugin again; True when its answer changed."""
        with self._lock:
            before = self._state[0] if self._state is not None else None
            self._refresh()
            assert self._state is not None
            return self._state[0] != before

    def _expired(self, answer: ExecCredential) -> bool:
        return answer.expiration is not None and self._wall() >= answer.expiration

    def _refresh(self) -> None:
        env = {**os.environ, **dict(self.config.env), "KUBERNETES_EXEC_INFO": self._info}
        output = self._run([self.config.command, *self.config.args], env)
        answer = parse_exec_credential(output, self.config.api_version, self.config.command)
        files = None
        if answer.client_certificate_data and answer.client_key_data:
            before = self._state
            pem = (answer.client_certificate_data, answer.client_key_data)
            if (
                before is not None
                and before[1] is not None
                and pem
                == (
                    before[0].client_certificate_data,
                    before[0].client_key_data,
                )
            ):
                files = before[1]
            else:
                # Superseded files stay until the connection closes: Kopf may still load them.
                files = (
                    self._scratch.write("exec-cert", pem[0].encode()),
                    self._scratch.write("exec-key", pem[1].encode()),
                )
        self._state = (answer, files)


# --- the connection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One API answer, whatever its status."""

    status: int
    reason: str
    headers: Mapping[str, str]
    data: bytes


class KubeConnection:
    """A pooled connection to one API server with credentials kept current.

    Thread-safe: reconciles send from worker threads. ``retries`` is urllib3's own (connection
    errors); ``maxsize`` the connections kept to the server.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        maxsize: int,
        retries: Retry,
        clock: Callable[[], float] = time.monotonic,
        run: ExecRunner = run_plugin,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._maxsize = maxsize
        self._retries = retries
        self._scratch = Scratch()
        self.ca_path = settings.ca_file or (
            self._scratch.write("ca", settings.ca_data) if settings.ca_data else None
        )
        if settings.ca_file is not None and not os.path.isfile(settings.ca_file):
            raise KubeConfigError(
                f"{settings.source}: the certificate authority {settings.ca_file} is missing"
            )
        self._static_files: tuple[str, str] | None = None
        if settings.client_cert_file or settings.client_cert_data:
            self._static_files = (
                settings.client_cert_file or self._scratch.write("cert", settings.client_cert_data or b""),
                settings.client_key_file or self._scratch.write("key", settings.client_key_data or b""),
            )
        self._token_file = None
        if settings.token_file:
            try:
                self._token_file = TokenFile(settings.token_file, clock=clock)
            except KubeConfigError as exc:
                raise KubeConfigError(f"{settings.source}: {exc}") from None
        self._exec = None
        if settings.exec is not None:
            ca_data = settings.ca_data
            if settings.exec.cluster is not None and ca_data is None and settings.ca_file:
                ca_data = Path(settings.ca_file).read_bytes()
            self._exec = ExecAuth(settings.exec, self._scratch, ca_data=ca_data, run=run, wall=wall)
        self._pool_lock = threading.Lock()
        self._pool_files: tuple[str, str] | None = None
        self._pool: urllib3.PoolManager | None = None

    @property
    def server(self) -> str:
        return self.settings.server

    def credentials(self) -> Credentials:
        """The current credentials (an exec plugin runs when it has none or they expired)."""
        if self._exec is not None:
            answer, files = self._exec.credential()
            return Credentials(answer.token, files or self._static_files, answer.expiration)
        token = self._token_file.token() if self._token_file is not None else self.settings.token
        return Credentials(token, self._static_files)

    def renew_credentials(self) -> bool:
        """After a 401: re-read the token file or re-run the exec plugin. True when that gave
        something new (worth another try); a static token or certificate gives nothing new."""
        if self._exec is not None:
            return self._exec.renew()
        if self._token_file is not None:
            return self._token_file.renew()
        return False

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Response:
        """Send one request. Raises urllib3's HTTPError when the server cannot be reached (after
        urllib3's retries) and CredentialError when there are no credentials to send."""
        credentials = self.credentials()
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": USER_AGENT}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        url = f"{self.settings.server}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        answer = self._pool_for(credentials.files).request(
            method,
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(total=timeout) if timeout else None,
            retries=self._retries,
            redirect=False,  # the API server never redirects; a bearer token is not followed anywhere
        )
        return Response(answer.status, answer.reason or "", answer.headers, answer.data)

    def _pool_for(self, files: tuple[str, str] | None) -> urllib3.PoolManager:
        pool = self._pool
        if pool is not None and files == self._pool_files:
            return pool
        with self._pool_lock:
            if self._pool is None or files != self._pool_files:
                old, self._pool = self._pool, self._new_pool(files)
                self._pool_files = files
                if old is not None:
                    old.clear()  # an exec plugin's new certificate: new connections
            return self._pool

    def _new_pool(self, files: tuple[str, str] | None) -> urllib3.PoolManager:
        tls: dict[str, Any] = {}
        if self.settings.server.startswith("https://"):
            if self.settings.insecure:
                tls.update(cert_reqs="CERT_NONE", assert_hostname=False)
            else:
                tls.update(cert_reqs="CERT_REQUIRED", ca_certs=self.ca_path or _default_ca_bundle())
            if self.settings.tls_server_name:
                tls["server_hostname"] = self.settings.tls_server_name
            if files is not None:
                tls.update(cert_file=files[0], key_file=files[1])
        return urllib3.PoolManager(num_pools=4, maxsize=self._maxsize, retries=self._retries, **tls)

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.clear()
        self._scratch.remove()


def _default_ca_bundle() -> str:
    """As the official client: certifi's bundle when the kubeconfig names no CA."""
    import certifi  # only for a cluster whose certificate a public CA signed

    return str(certifi.where())


# --- loading -------------------------------------------------------------------------------------


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str]) -> tuple[list[str], bool]:
    """The files to read, and whether they must all exist (an explicit path must; the entries
    of ``$KUBECONFIG`` that are missing are skipped, as kubectl does)."""
    if explicit:
        return [explicit], True
    listed = [p for p in (environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if listed:
        return listed, False
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")], False


def read_kubeconfig(explicit: str | None, environ: Mapping[str, str] | None = None) -> KubeConfig:
    env = os.environ if environ is None else environ
    paths, required = kubeconfig_paths(explicit, env)
    documents = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            if required:
                raise KubeConfigError(f"kubeconfig {path} does not exist") from None
            continue
        except OSError as exc:
            raise KubeConfigError(f"kubeconfig {path} cannot be read: {type(exc).__name__}") from None
        try:
            documents.append((os.path.abspath(path), yaml.safe_load(text)))
        except yaml.YAMLError:
            raise KubeConfigError(f"kubeconfig {path} is not valid YAML") from None
    if not documents:
        raise KubeConfigError(f"no kubeconfig found (looked at {', '.join(paths)})")
    return merge_kubeconfigs(documents)


def load_settings(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    in_cluster_dir: Path = IN_CLUSTER_DIR,
) -> ConnectionSettings:
    """An explicit kubeconfig; else the pod's service account when mounted; else ``$KUBECONFIG``
    or ``~/.kube/config`` (``context``, else its current-context)."""
    env = os.environ if environ is None else environ
    if kubeconfig:
        return settings_from_kubeconfig(read_kubeconfig(kubeconfig, env), context)
    try:
        settings = in_cluster_settings(env, in_cluster_dir)
    except KubeConfigError as not_in_pod:
        reason = str(not_in_pod)
    else:
        if os.path.isfile(in_cluster_dir / "token"):
            return settings
        reason = f"no service-account token at {in_cluster_dir / 'token'}"
    try:
        return settings_from_kubeconfig(read_kubeconfig(None, env), context)
    except KubeConfigError as exc:
        raise KubeConfigError(f"{exc} (and in-cluster: {reason})") from None
