"""The operator's connection to the Kubernetes API: settings found, credentials kept current,
one request at a time over :mod:`rotator.http1`.

``rotator.kube`` used the official ``kubernetes`` client for this; importing it loads every
generated model (~35 MiB of RSS) and its ``call_api`` spent 1-2 ms of CPU a request (issue 11).
What rotator needs of it is small: the connection settings (in-cluster, or a kubeconfig) and a
pooled HTTPS request with a bearer token or a client certificate.

This module is the I/O; what the settings and a plugin's answer mean is decided, pure, in
:mod:`rotator.kubeconfig`. :func:`load_settings` reads the settings (an explicit kubeconfig, else
the in-cluster service account, else ``$KUBECONFIG`` or ``~/.kube/config``), and
:class:`KubeConnection` sends requests with credentials that stay current: a token file (the
in-cluster bound token, a kubeconfig ``tokenFile``) is re-read when it changes, an exec plugin
re-runs when its credential expires, and both are renewed on a 401.
"""

from __future__ import annotations

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

import yaml

from rotator import http1
from rotator.kubeconfig import (
    IN_CLUSTER_DIR,
    ConnectionSettings,
    CredentialError,
    ExecConfig,
    ExecCredential,
    KubeConfig,
    KubeConfigError,
    exec_info,
    in_cluster_settings,
    merge_kubeconfigs,
    parse_exec_credential,
    settings_from_kubeconfig,
)

TOKEN_RECHECK_SECONDS: Final = 10.0
"""How often a token file is looked at again. A bound service-account token is rotated by the
kubelet at 80 % of its lifetime (48 min of 1 h), so a change is seen long before the old token
expires; a 401 re-reads it at once anyway."""

EXEC_TIMEOUT_SECONDS: Final = 60.0
"""An exec credential plugin that hangs must not hold every request of the process behind it."""

USER_AGENT: Final = "rotator"


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

    Thread-safe: reconciles send from worker threads. ``retries``: how many more times a
    connection that could not be established is tried; ``maxsize`` the connections kept to the
    server.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        maxsize: int,
        retries: int,
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
        self._pool: http1.Pool | None = None
        # A server URL may carry a path prefix (a proxy in front of the API server): kept for
        # each call.
        try:
            self._scheme, self._host, self._port = http1.split_origin(settings.server)
        except ValueError as exc:
            raise KubeConfigError(f"{settings.source}: server {settings.server!r}: {exc}") from None
        after_netloc = settings.server.partition("://")[2].partition("/")
        self._prefix = (after_netloc[1] + after_netloc[2]).split("?", 1)[0].rstrip("/")

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
        """Send one request. Raises :class:`rotator.http1.HttpFailure` when the server cannot be
        reached or the exchange broke off, and CredentialError when there are no credentials to
        send."""
        credentials = self.credentials()
        headers, target = self._head(credentials, path, query)
        headers["Content-Type"] = content_type
        # Never a redirect followed: the API server does not send one, and a bearer token goes
        # nowhere else.
        answer = self._pool_for(credentials.files).request(
            method, target, headers, body, http1.Timeout(timeout, timeout) if timeout else None
        )
        return Response(answer.status, answer.reason, answer.headers, answer.data)

    def stream(
        self, path: str, *, query: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> http1.Stream:
        """A GET whose answer is read as it arrives (a watch); ``timeout`` bounds each wait for
        more of it. Raises as :meth:`request`."""
        credentials = self.credentials()
        headers, target = self._head(credentials, path, query)
        return self._pool_for(credentials.files).stream(
            "GET", target, headers, http1.Timeout(timeout, timeout) if timeout else None
        )

    def _head(
        self, credentials: Credentials, path: str, query: Mapping[str, str] | None
    ) -> tuple[dict[str, str], str]:
        """The headers every request carries, and the request target."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        target = f"{self._prefix}{path}"
        return headers, f"{target}?{urlencode(query)}" if query else target

    def _pool_for(self, files: tuple[str, str] | None) -> http1.Pool:
        pool = self._pool
        if pool is not None and files == self._pool_files:
            return pool
        with self._pool_lock:
            if self._pool is None or files != self._pool_files:
                old, self._pool = self._pool, self._new_pool(files)
                self._pool_files = files
                if old is not None:
                    old.close()  # an exec plugin's new certificate: new connections
            return self._pool

    def _new_pool(self, files: tuple[str, str] | None) -> http1.Pool:
        tls = None
        if self._scheme == "https":
            if self.settings.insecure:
                tls = http1.tls_context(verify=False, client_cert=files)
            else:
                tls = http1.tls_context(ca_file=self.ca_path or _default_ca_bundle(), client_cert=files)
        return http1.Pool(
            self._host,
            self._port,
            tls=tls,
            server_hostname=self.settings.tls_server_name,
            maxsize=self._maxsize,
            retries=self._retries,
        )

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
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
    home = environ.get("HOME") or os.path.expanduser("~")  # the environment given, as for $KUBECONFIG
    return [os.path.join(home, ".kube", "config")], False


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
