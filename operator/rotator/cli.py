"""`rotator run | sandbox | validate`: the command-line entry point."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rotator.kube import Kube
    from rotator.models import LeaderElection

CRASH_ENV: Final = "ROTATOR_CRASH_AT"
CRASH_EXIT_CODE: Final = 86


def crash_hook(point_spec: str | None) -> Callable[[str], None]:
    """Fault injection for tests: kill the process outright at a named step boundary.

    `os._exit` skips every cleanup, which is what a SIGKILL or an OOM kill does: nothing gets
    a chance to persist status, so the restarted operator sees exactly what was on disk.
    """
    points = {p.strip() for p in (point_spec or "").split(",") if p.strip()}

    def checkpoint(point: str) -> None:
        if point in points:
            sys.stderr.write(f"rotator: crash injected at {point}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)

    return checkpoint


SERVICE_ACCOUNT_NAMESPACE: Final = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def leader_election_settings(args: argparse.Namespace) -> LeaderElection:
    """The flags, with the Lease namespace and identity resolved as controller-runtime does:
    the flag, else POD_NAMESPACE (downward API), else the mounted service account's namespace,
    else ``default``; the identity is POD_NAME (else the host name) plus a random suffix."""
    import socket

    from rotator.leader import default_identity
    from rotator.models import LeaderElection

    namespace = args.leader_election_namespace or os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        with contextlib.suppress(OSError):
            namespace = Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip()
    return LeaderElection(
        enabled=args.leader_election,
        lease_name=args.leader_election_id,
        namespace=namespace or "default",
        identity=default_identity(os.environ.get("POD_NAME"), socket.gethostname()),
        pod_name=os.environ.get("POD_NAME", ""),
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        retry_period=args.leader_election_retry_period,
    )


def _run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from rotator import engine, handlers, logs
    from rotator.kube import Kube, WatchCache, load_api_client, watched_object
    from rotator.leader import LeaderElector
    from rotator.metrics import Metrics
    from rotator.models import Settings
    from rotator.steps.checkpoints import Checkpoint
    from rotator.stores.opener import StoreOpener
    from rotator.tenancy.resolver import StoreResolver

    logs.configure(logging.DEBUG if args.verbose else logging.INFO, json_output=args.log_format == "json")
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # Kopf's own login reads it too
    metrics = Metrics()
    kube = Kube(
        load_api_client(args.kubeconfig),
        on_request=metrics.count_kube_request,
        cache=WatchCache(watched_object),  # fed by the handlers' watches
    )
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
    opener = StoreOpener(kube, metrics)
    allowed = frozenset(args.allowed_store_address or ())
    election = leader_election_settings(args)
    elector = LeaderElector(kube, election) if election.enabled else None
    crash = crash_hook(os.environ.get(CRASH_ENV))

    def checkpoint(point: Checkpoint) -> None:
        crash(point)
        if elector is not None:
            elector.stop_unless_leading(point)  # a deposed leader stops here

    deps = engine.Deps(
        kube=kube,
        resolve_store=StoreResolver(kube, allowed),
        open_store=opener,
        store_auth_failed=opener.auth_failed,
        aws_session=opener.aws_session,
        metrics=metrics,
        checkpoint=checkpoint,
        settings=Settings(
            idle_resync=args.idle_resync, resync=args.resync, poll=args.poll, leader_election=election
        ),
    )
    if elector is not None:
        elector.start()
    try:
        handlers.run_operator(
            handlers.Runtime(deps, store_health=opener.health, allowed_addresses=allowed, leader=elector),
            list(args.namespace or []),
            args.liveness_port,
            liveness_address=args.liveness_address,
        )
    finally:
        if elector is not None:
            elector.stop()  # releases the Lease: a standby takes over at its next try
    return 0


def _validate(args: argparse.Namespace) -> int:
    from rotator.models import InvalidSpecError, parse_spec
    from rotator.models.manifests import ManifestError, load_manifests

    failures = 0
    for path in args.files:
        try:
            documents = load_manifests(path)
        except ManifestError as exc:
            failures += 1
            print(f"{path}: invalid: {exc.problem}")
            continue
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") != "RotationPolicy":
                continue
            meta = doc.get("metadata")
            name = f"{path}: {meta.get('name', '?') if isinstance(meta, dict) else '?'}"
            try:
                parse_spec(doc.get("spec") or {})
            except InvalidSpecError as exc:
                failures += 1
                print(f"{name}: invalid: {exc}")
            else:
                print(f"{name}: ok")
    return 1 if failures else 0


def _kube(args: argparse.Namespace) -> Kube:
    from rotator.kube import Kube, load_api_client

    return Kube(load_api_client(args.kubeconfig))


def _status(args: argparse.Namespace) -> int:
    from rotator.kube import GROUP, PLURAL, VERSION, policy_path
    from rotator.models import ConditionType, RotationPolicyStatus

    kube = _kube(args)
    path = policy_path(args.namespace) if args.namespace else f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    rows = [("NAMESPACE", "NAME", "STORE", "PHASE", "CURRENT", "LAST ROTATION", "NEXT", "READY", "REASON")]
    for item in kube.list(path):
        meta, status = item.get("metadata", {}), item.get("status") or {}
        ready: dict[str, str] = {}
        with contextlib.suppress(ValueError):  # a hand-edited status still lists, without Ready
            condition = RotationPolicyStatus.from_raw(status).condition(ConditionType.READY)
            ready = condition.to_patch() if condition is not None else {}
        rows.append(
            (
                meta.get("namespace", ""),
                meta.get("name", ""),
                status.get("storeKind", "-"),
                status.get("phase", "-"),
                status.get("currentVersion", "-"),
                status.get("lastRotationTime") or "-",
                status.get("nextRotationTime") or "-",
                ready.get("status", "Unknown"),
                ready.get("reason", "-"),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _force(args: argparse.Namespace) -> int:
    import time

    from rotator.kube import KubeError, policy_path
    from rotator.models.keys import FORCE_ROTATE

    value = args.value or str(int(time.time()))
    try:
        _kube(args).merge_patch(
            policy_path(args.namespace, args.name), {"metadata": {"annotations": {FORCE_ROTATE: value}}}
        )
    except KubeError as exc:
        print(f"rotator force: {args.namespace}/{args.name}: {exc}")
        return 1
    print(f"RotationPolicy {args.namespace}/{args.name}: {FORCE_ROTATE}={value} (one rotation per value)")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from rotator.sandbox.scenario import run_sandbox

    return run_sandbox(Path(args.dir), once=args.once, scenario=args.scenario)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rotator", description="Rotate credentials with zero downtime.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument("--kubeconfig", help="kubeconfig path (default: in-cluster, then ~/.kube/config)")
    run.add_argument("--namespace", "-n", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port; 0 disables")
    run.add_argument("--metrics-address", default="0.0.0.0", help="Prometheus bind address")  # noqa: S104
    run.add_argument("--liveness-port", type=int, default=8080, help="/healthz port; 0 disables")
    run.add_argument("--liveness-address", default="0.0.0.0", help="/healthz bind address")  # noqa: S104
    run.add_argument(
        "--idle-resync",
        type=float,
        default=30.0,
        help="seconds between looks at a held, suspended or dry-run policy; longest step wait",
    )
    run.add_argument(
        "--resync",
        type=float,
        default=600.0,
        help="seconds (+0-20%% per policy) between full looks at an idle policy: store and Secret; "
        "drift is found by watching managed Secrets, this is the safety net",
    )
    run.add_argument(
        "--poll", type=float, default=1.0, help="seconds between polls while waiting on rollouts"
    )
    run.add_argument(
        "--allowed-store-address",
        action="append",
        help="only stores at this address (Vault URL, or aws:REGION:ENDPOINT) are used (repeatable; "
        "default: any address an admin put into a RotationStore/ClusterRotationStore)",
    )
    election = run.add_argument_group(
        "leader election", "several replicas, one reconciling: the holder of a coordination.k8s.io Lease"
    )
    election.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take part in leader election (default: on; off only for a single certain replica)",
    )
    election.add_argument("--leader-election-id", default="rotator-leader", help="the Lease's name")
    election.add_argument(
        "--leader-election-namespace",
        default="",
        help="the Lease's namespace (default: POD_NAMESPACE, else the service account's, else default)",
    )
    election.add_argument(
        "--leader-election-lease-duration",
        type=float,
        default=15.0,
        help="seconds without renewal before a standby takes over",
    )
    election.add_argument(
        "--leader-election-renew-deadline",
        type=float,
        default=10.0,
        help="seconds the leader keeps acting without a renewal, then stops",
    )
    election.add_argument(
        "--leader-election-retry-period", type=float, default=2.0, help="seconds between renewals and tries"
    )
    run.add_argument("--log-format", choices=["json", "text"], default="json")
    run.add_argument("--verbose", "-v", action="store_true")
    run.set_defaults(func=_run)

    sandbox = sub.add_parser("sandbox", help="start the embedded local stack and run a rotation")
    sandbox.add_argument("--once", action="store_true", help="run the scenario to its end and exit 0/1")
    sandbox.add_argument("--scenario", choices=["rotation", "failed-rollout"], default="rotation")
    sandbox.add_argument("--dir", default=".sandbox", help="working directory (kubeconfig, logs)")
    sandbox.set_defaults(func=_sandbox)

    status = sub.add_parser("status", help="list RotationPolicies with phase, versions and readiness")
    status.add_argument("--kubeconfig")
    status.add_argument("--namespace", "-n", help="only this namespace (default: all)")
    status.set_defaults(func=_status)

    force = sub.add_parser("force", help="force one rotation now (sets rotator.dev/force-rotate)")
    force.add_argument("name")
    force.add_argument("--namespace", "-n", default="default")
    force.add_argument("--kubeconfig")
    force.add_argument("--value", help="annotation value (default: the current Unix time)")
    force.set_defaults(func=_force)

    validate = sub.add_parser("validate", help="check RotationPolicy YAML files against the schema")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
