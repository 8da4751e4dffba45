"""A real Kubernetes control plane on 127.0.0.1, built from Go (DESIGN §5, "Kubernetes, real").

Where the embedded emulator (``kube_server``) is fast and needs no Go, this runs the real thing:
etcd, kube-apiserver (RBAC + Node authorizer, service-account issuer, TokenRequest and
TokenReview live, client-certificate auth), kube-controller-manager (each controller with its
own service-account credentials: deployments, replica sets, garbage collector, service
accounts, ...), kube-scheduler, and kwok playing kubelet for one or two fake Nodes, so pods are
scheduled, become Running and Ready, and Deployments roll out for real.

The binaries come from ``e2e/controlplane/build.sh`` (pinned by the go.mod beside it) and live in
a cache outside the checkout; :func:`controlplane_bin_dir` finds it and :func:`ensure_built`
builds it (minutes, cold). Nothing here builds implicitly.

Every process runs on 127.0.0.1 on a free port, in its own process group, with its log and
files under one temporary work directory, and is stopped by its own PID (SIGTERM, then SIGKILL)
through :class:`~rotator.sandbox.processes.LocalServer`. Certificates and the service-account
signing key are generated at each start (``cryptography``), so nothing secret is stored.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rotator.models.keys import ROTATION_ID
from rotator.sandbox import cluster_consumers
from rotator.sandbox.cluster_consumers import FAULT_LABEL, FAULT_NEVER_READY
from rotator.sandbox.pod_start import SECRET_VERSIONS_ANNOTATION, PodInfo, SecretVersionRecorder
from rotator.sandbox.processes import LOOPBACK, LocalServer, ServerError, free_port, http_ok, run_checked

JSON = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "e2e" / "controlplane" / "build.sh"
BIN_DIR_ENV = "ROTATOR_CONTROLPLANE_BIN"
"""Set to a directory holding the five binaries to use them instead of the build cache."""

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
"""The ``kubernetes`` Service's cluster IP: the first address of SERVICE_CIDR."""
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
"""Service-account token issuer (and default audience)."""
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
"""Nodes carrying this annotation are the ones kwok plays kubelet for."""

_CERT_DAYS = 30
NODE_LEASE_SECONDS = 40
"""kwok renews each fake node's Lease (kube-node-lease) within this, as a kubelet does."""

# The failing-readiness fault (rotator.sandbox.cluster_consumers), as a kwok selector.
_FAULTY = (
    f'(.metadata.labels["{FAULT_LABEL}"] == "{FAULT_NEVER_READY}")'
    f' and (.metadata.annotations["{ROTATION_ID}"] != null)'
)

# A bound pod's stage: Running at once, and Ready (``ready``) or, for a pod FAULT_LABEL marks
# (the selector's FAULTY), Running but never Ready. One template, so the two cannot drift. A pod
# starts only once pod_start.SecretVersionRecorder has recorded the Secret versions it reads
# (as a kubelet reads its Secrets before it starts the containers).
_POD_STAGE = """\
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: @NAME@}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Pending]}
    - {key: '@FAULTY@', operator: @FAULTY_OPERATOR@, values: ["true"]}
    - {key: '.metadata.annotations["@RECORDED@"]', operator: Exists}
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      - {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "@STATUS@"@REASON@, lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "@STATUS@"@REASON@, lastTransitionTime: {{ $now | Quote }}}
      {{ range .spec.readinessGates }}
      - {type: {{ .conditionType | Quote }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: @READY@
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - {ip: {{ . | Quote }}}
      {{ end }}
      {{ end }}
"""


def _pod_stage(name: str, *, ready: bool) -> str:
    """The kwok Stage for pods that become Ready (``ready``) or never do (the FAULTY ones)."""
    tokens = {
        "@NAME@": name,
        "@FAULTY@": _FAULTY,
        "@RECORDED@": SECRET_VERSIONS_ANNOTATION,
        "@FAULTY_OPERATOR@": "NotIn" if ready else "In",
        "@STATUS@": "True" if ready else "False",
        "@REASON@": "" if ready else ", reason: ContainersNotReady",
        "@READY@": "true" if ready else "false",
    }
    stage = _POD_STAGE
    for token, value in tokens.items():
        stage = stage.replace(token, value)
    return stage


# kwok ships no stages of its own: these say what a fake kubelet does. A fake node becomes
# Ready with ample room; a bound pod becomes Running and Ready at once (unless FAULT_LABEL says
# otherwise: then Running, never Ready); a deleted pod goes away (no kubelet would otherwise
# confirm the deletion). Node liveness after that is kwok's leases.
KWOK_STAGES = (
    """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: rotator-node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ["True"]}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ .metadata.name | Quote }}}
      allocatable: {cpu: "64", memory: 256Gi, pods: "256"}
      capacity: {cpu: "64", memory: 256Gi, pods: "256"}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        kernelVersion: ""
        osImage: ""
        machineID: ""
        systemUUID: ""
        bootID: ""
      phase: Running
"""
    + _pod_stage("rotator-pod-ready", ready=True)
    + _pod_stage("rotator-pod-never-ready", ready=False)
    + """---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: rotator-pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    delete: true
"""
)


class ControlPlaneUnavailable(ServerError):
    """The control-plane binaries are not built (or cannot be found)."""


# ------------------------------------------------------------------------------ binaries


def controlplane_bin_dir() -> Path:
    """The directory holding the control-plane binaries; it may not be built yet.

    ``$ROTATOR_CONTROLPLANE_BIN`` wins; otherwise ``build.sh --print-dir`` names the cache
    directory for the pinned versions (it only hashes the pins: it builds nothing).
    """
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Path(override)
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneUnavailable(f"{BUILD_SCRIPT} not found: set {BIN_DIR_ENV} to the binaries")
    out = run_checked(["bash", str(BUILD_SCRIPT), "--print-dir"], what="build.sh --print-dir", timeout=30)
    return Path(out.strip())


def missing_binaries(bin_dir: Path | None = None) -> list[str]:
    """Names of the control-plane binaries that are not (yet) in ``bin_dir``."""
    directory = bin_dir if bin_dir is not None else controlplane_bin_dir()
    return [name for name in BINARIES if not os.access(directory / name, os.X_OK)]


def ensure_built(*, timeout: float = 3600.0, output: IO[str] | None = None) -> Path:
    """Run ``build.sh`` (a no-op printing "cached" when built) and return the bin directory.

    A cold build compiles Kubernetes from source: many minutes on two cores. Its output goes to
    ``output`` (stderr by default). Raises :class:`ControlPlaneUnavailable` when it fails.
    """
    if not os.environ.get(BIN_DIR_ENV):
        _run_build(timeout, output if output is not None else sys.stderr)
    bin_dir = controlplane_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        raise ControlPlaneUnavailable(f"missing in {bin_dir}: {', '.join(missing)}")
    return bin_dir


def _run_build(timeout: float, sink: IO[str]) -> None:
    """Run build.sh, streaming its output to ``sink`` line by line (a cold build is long)."""
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            ["bash", str(BUILD_SCRIPT)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise ControlPlaneUnavailable(f"build.sh could not run: {exc}") from exc
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        with proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink.write(line)
                sink.flush()
                tail = [*tail[-40:], line]
            code = proc.wait()
    finally:
        timed_out = not watchdog.is_alive()
        watchdog.cancel()
    if timed_out:
        raise ControlPlaneUnavailable(f"build.sh did not finish within {timeout:.0f}s")
    if code != 0:
        raise ControlPlaneUnavailable(f"build.sh failed with code {code}:\n{''.join(tail)}")


# ---------------------------------------------------------------------------------- PKI


class _Pki:
    """A throwaway CA with serving/client certificates and a service-account key pair (EC P-256:
    generating one takes about a millisecond, unlike RSA)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rotator-realkube-ca")])
        self._ca_name = name
        self.ca_cert = self._sign(
            self._builder(name, self._ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        self.ca_path = self._write("ca.crt", self.ca_cert.public_bytes(serialization.Encoding.PEM))
        sa_key = ec.generate_private_key(ec.SECP256R1())
        self.sa_key_path = self._write("sa.key", _key_pem(sa_key))
        self.sa_pub_path = self._write(
            "sa.pub",
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    @staticmethod
    def _builder(subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=_CERT_DAYS))
        )

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.issuer_name(self._ca_name).sign(self._ca_key, hashes.SHA256())

    def _write(self, filename: str, data: bytes) -> Path:
        path = self.dir / filename
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> tuple[Path, Path]:
        """A leaf certificate (serving when it has SANs, client otherwise): (cert, key) paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        serving = bool(dns or ips)
        builder = (
            self._builder(x509.Name(attributes), key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if serving else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if serving:
            names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = self._sign(builder)
        return (
            self._write(f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{stem}.key", _key_pem(key)),
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# --------------------------------------------------------------------------- components


class _Component(LocalServer):
    """One control-plane process, its files under the cluster's work directory."""

    def __init__(self, cluster: RealKubeServer, *, start_timeout: float) -> None:
        super().__init__(start_timeout=start_timeout)
        # LocalServer made a private temporary directory; keep everything under the cluster's.
        os.rmdir(self.workdir)
        self.workdir = cluster.workdir / self.name
        self.workdir.mkdir(mode=0o700)
        self.log_path = self.workdir / f"{self.name}.log"
        self.cluster = cluster

    def _env(self) -> Mapping[str, str]:
        # No user configuration (~/.kube, ~/.kwok) may leak in.
        return {"HOME": str(self.workdir), "KUBECONFIG": ""}

    def _binary(self) -> str:
        return str(self.cluster.bin_dir / self.name)


class _Etcd(_Component):
    name = "etcd"

    def __init__(self, cluster: RealKubeServer) -> None:
        super().__init__(cluster, start_timeout=30)
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        peer = f"http://{self.host}:{self.peer_port}"
        return [
            self._binary(),
            "--name=rotator",
            f"--data-dir={self.workdir / 'data'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=rotator={peer}",
            "--log-level=warn",
            # Test data: durability buys nothing and fsync is the slow part on a shared disk.
            "--unsafe-no-fsync",
        ]

    def _healthy(self) -> bool:
        return http_ok(f"{self.url}/health", timeout=0.5)


class _ApiServer(_Component):
    name = "kube-apiserver"

    def _argv(self) -> list[str]:
        c = self.cluster
        return [
            self._binary(),
            f"--etcd-servers={c.etcd.url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={c.serving_cert}",
            f"--tls-private-key-file={c.serving_key}",
            f"--client-ca-file={c.pki.ca_path}",
            # Published for delegated authentication (controller-manager, scheduler); no front
            # proxy certificate is ever issued with this name.
            f"--requestheader-client-ca-file={c.pki.ca_path}",
            "--requestheader-allowed-names=rotator-front-proxy",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={c.pki.sa_pub_path}",
            f"--service-account-signing-key-file={c.pki.sa_key_path}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # 127.0.0.1 is not a valid endpoint for the `kubernetes` Service: don't publish one.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.workdir / 'certs'}",
        ]

    def _healthy(self) -> bool:
        return self.cluster.probe("/readyz")


class _Client(_Component):
    """A component that talks to kube-apiserver with its own client certificate."""

    user = ""
    groups: tuple[str, ...] = ()

    def _prepare(self) -> None:
        self.kubeconfig = self.cluster.write_kubeconfig(
            self.workdir / "kubeconfig", user=self.user, groups=self.groups
        )

    def _secure_flags(self) -> list[str]:
        c = self.cluster
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            f"--bind-address={self.host}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={c.serving_cert}",
            f"--tls-private-key-file={c.serving_key}",
            f"--cert-dir={self.workdir / 'certs'}",
            "--leader-elect=false",
        ]

    def _healthy(self) -> bool:
        return self.cluster.probe("/healthz", port=self.port, client_cert=False)


class _ControllerManager(_Client):
    name = "kube-controller-manager"
    user = "system:kube-controller-manager"

    def _argv(self) -> list[str]:
        c = self.cluster
        return [
            self._binary(),
            *self._secure_flags(),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={c.pki.sa_key_path}",
            f"--root-ca-file={c.pki.ca_path}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
        ]


class _Scheduler(_Client):
    name = "kube-scheduler"
    user = "system:kube-scheduler"

    def _argv(self) -> list[str]:
        return [self._binary(), *self._secure_flags()]


class _Kwok(_Client):
    name = "kwok"
    user = "rotator-kwok"
    groups = ("system:masters",)

    def _prepare(self) -> None:
        super()._prepare()
        self.stages = self.workdir / "stages.yaml"
        self.stages.write_text(KWOK_STAGES)

    def _argv(self) -> list[str]:
        key, value = FAKE_NODE_ANNOTATION
        return [
            self._binary(),
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.stages}",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--server-address={self.host}:{self.port}",
            f"--cidr={POD_CIDR}",
            f"--node-ip={self.host}",
            # Without a lease duration kwok keeps no node Leases, and the stages renew a node's
            # heartbeat only while it is not Ready: controller-manager then found every node
            # silent after its grace period (50 s), marked it Unknown and every pod on it
            # NotReady, and nothing here ever readies a Running pod again.
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        ]

    def _healthy(self) -> bool:
        return http_ok(f"http://{self.host}:{self.port}/healthz", timeout=0.5)


# ------------------------------------------------------------------------------ cluster


class ApiError(RuntimeError):
    """kube-apiserver answered a request with an error status."""

    def __init__(self, status: int, body: JSON | str) -> None:
        self.status = status
        self.body = body
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")


class RealKubeServer:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1.

    ``start()`` returns once the API server is ready, every component is healthy and the fake
    nodes are Ready and schedulable; ``startup_seconds`` is that wall time (certificates
    included). ``write_kubeconfig(path)`` writes a self-contained admin kubeconfig
    (system:masters, client certificate). Usable as a context manager; ``stop()`` is
    idempotent and ``close()`` also removes the work directory.
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        nodes: int = 2,
        start_timeout: float = 90.0,
    ) -> None:
        self.bin_dir = bin_dir if bin_dir is not None else controlplane_bin_dir()
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ControlPlaneUnavailable(
                f"control-plane binaries missing in {self.bin_dir}: {', '.join(missing)} "
                f"(build them with {BUILD_SCRIPT})"
            )
        self.host = LOOPBACK
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="rotator-realkube-")).resolve()
        self.pki = _Pki(self.workdir / "pki")
        self.serving_cert, self.serving_key = self.pki.issue(
            "serving",
            "kube-apiserver",
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            ips=[LOOPBACK, SERVICE_IP],
        )
        self.admin_cert, self.admin_key = self.pki.issue(
            "admin", "rotator-admin", organizations=["system:masters"]
        )
        self.etcd = _Etcd(self)
        self.apiserver = _ApiServer(self, start_timeout=start_timeout)
        self.controller_manager = _ControllerManager(self, start_timeout=start_timeout)
        self.scheduler = _Scheduler(self, start_timeout=start_timeout)
        self.kwok = _Kwok(self, start_timeout=start_timeout)
        self.components: list[_Component] = [
            self.etcd,
            self.apiserver,
            self.controller_manager,
            self.scheduler,
            self.kwok,
        ]
        self.recorder = SecretVersionRecorder(lambda method, path, body: self.api(method, path, body))
        """Plays the kubelet's Secret read at pod start (kwok starts no pod it has not recorded)."""
        self.startup_seconds: float | None = None
        """Wall time of the last successful ``start()``."""
        self._ssl = ssl.create_default_context(cafile=str(self.pki.ca_path))
        self._ssl.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        self._ssl_anonymous = ssl.create_default_context(cafile=str(self.pki.ca_path))

    # ---------------------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self.apiserver.port

    @property
    def url(self) -> str:
        """The API server URL, ``https://127.0.0.1:PORT``."""
        return f"https://{self.host}:{self.port}"

    @property
    def started_pids(self) -> list[int]:
        """Every PID any component spawned (for leak checks)."""
        return [pid for component in self.components for pid in component.started_pids]

    @property
    def running(self) -> bool:
        return all(component.running for component in self.components)

    def start(self) -> Self:
        """Start every component in order and wait for schedulable nodes; raise ServerError."""
        began = time.monotonic()
        try:
            for component in self.components:
                component.start()
                if component is self.apiserver:
                    self.recorder.start()
            self._create_nodes()
            self._wait_nodes_ready(began + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every component by PID, in reverse order (etcd last). Idempotent."""
        errors: list[BaseException] = []
        self.recorder.stop()
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception as exc:  # stop the others all the same
                errors.append(exc)
        if errors:
            raise ServerError(f"stopping the control plane: {errors}")

    def close(self) -> None:
        """Stop and remove the work directory (logs, data and keys)."""
        try:
            self.stop()
        finally:
            for component in self.components:
                component.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def log_tails(self, lines: int = 15) -> str:
        """The end of each component's log, for failure messages."""
        return "\n".join(f"--- {c.name}\n{c.log_tail(lines)}" for c in self.components)

    def __repr__(self) -> str:
        return f"<RealKubeServer {self.url} running={self.running}>"

    # ------------------------------------------------------------------------------- nodes

    def _create_nodes(self) -> None:
        key, value = FAKE_NODE_ANNOTATION
        for name in self.node_names:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            }
            try:
                self.api("POST", "/api/v1/nodes", node)
            except ApiError as exc:
                if exc.status != 409:
                    raise

    def _wait_nodes_ready(self, deadline: float) -> None:
        while True:
            nodes = self.api("GET", "/api/v1/nodes").get("items", [])
            ready = {n["metadata"]["name"] for n in nodes if _schedulable(n)}
            if ready >= set(self.node_names):
                return
            for component in self.components:
                if not component.running:
                    raise ServerError(f"{component.name} exited\n{component.log_tail()}")
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"kwok nodes not Ready after {self.start_timeout:.0f}s "
                    f"(ready: {sorted(ready)})\n{self.log_tails()}"
                )
            time.sleep(0.1)

    # ---------------------------------------------------------------------------- clients

    def probe(self, path: str, *, port: int | None = None, client_cert: bool = True) -> bool:
        """True if GET https://127.0.0.1:PORT/path answers 200 (the API server by default)."""
        url = f"https://{self.host}:{port or self.port}{path}"
        context = self._ssl if client_cert else self._ssl_anonymous
        try:
            with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
                return int(response.status) == 200
        except (OSError, ValueError):
            return False

    def api(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> JSON:
        """One request to kube-apiserver, as the admin or with a bearer ``token``; the decoded
        JSON answer, or ApiError. PATCH bodies are JSON merge patches."""
        data = json.dumps(body).encode() if body is not None else None
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        context = self._ssl if token is None else self._ssl_anonymous
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                answer: JSON = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            decoded: JSON | str = raw
            with contextlib.suppress(ValueError):
                decoded = json.loads(raw)
            raise ApiError(exc.code, decoded) from None

    def _api_call(self, method: str, path: str, body: JSON | None) -> JSON:
        return self.api(method, path, body)

    def workload_pods(self, kind: str, namespace: str, name: str) -> list[PodInfo]:
        """A workload's live pods with the Secret versions each one started with
        (:func:`rotator.sandbox.cluster_consumers.workload_pods`)."""
        return cluster_consumers.workload_pods(self._api_call, kind, namespace, name)

    def set_fail_readiness(
        self, kind: str, namespace: str, name: str, fail: bool = True, *, timeout: float = 60.0
    ) -> None:
        """The failing-readiness fault by FAULT_LABEL, honoured by kwok's pod stages
        (:func:`rotator.sandbox.cluster_consumers.set_fail_readiness`: rolls the workload once)."""
        cluster_consumers.set_fail_readiness(self._api_call, kind, namespace, name, fail, timeout=timeout)

    def kubeconfig(
        self,
        *,
        namespace: str = "default",
        user: str | None = None,
        groups: Sequence[str] = (),
        token: str | None = None,
    ) -> JSON:
        """A self-contained kubeconfig: the admin by default; ``user`` (+ ``groups``) issues a
        client certificate for that identity; ``token`` authenticates with a bearer token."""
        if token is not None:
            credentials: JSON = {"token": token}
            user_name = "token"
        elif user is not None:
            stem = "client-" + user.replace(":", "-")
            cert, key = self.pki.issue(stem, user, organizations=groups)
            credentials = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
            user_name = user
        else:
            credentials = {
                "client-certificate-data": _b64(self.admin_cert),
                "client-key-data": _b64(self.admin_key),
            }
            user_name = "rotator-admin"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "rotator-realkube",
                    "cluster": {"server": self.url, "certificate-authority-data": _b64(self.pki.ca_path)},
                }
            ],
            "users": [{"name": user_name, "user": credentials}],
            "contexts": [
                {
                    "name": "rotator-realkube",
                    "context": {"cluster": "rotator-realkube", "user": user_name, "namespace": namespace},
                }
            ],
            "current-context": "rotator-realkube",
            "preferences": {},
        }

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        namespace: str = "default",
        user: str | None = None,
        groups: Sequence[str] = (),
        token: str | None = None,
    ) -> Path:
        """Write :meth:`kubeconfig` to ``path`` (mode 0600) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        config = self.kubeconfig(namespace=namespace, user=user, groups=groups, token=token)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)
        return target


def _schedulable(node: JSON) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints", [])
    return ready and not node.get("spec", {}).get("unschedulable") and not taints


__all__ = [
    "BINARIES",
    "BIN_DIR_ENV",
    "BUILD_SCRIPT",
    "FAULT_LABEL",
    "FAULT_NEVER_READY",
    "ApiError",
    "ControlPlaneUnavailable",
    "RealKubeServer",
    "controlplane_bin_dir",
    "ensure_built",
    "missing_binaries",
]
