"""`rotator run | sandbox | validate | status | force | plan`: the command-line entry point."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rotator.kube import Kube
    from rotator.models import LeaderElection
    from rotator.tenancy.resolve import ResolvedStore

CRASH_ENV: Final = "ROTATOR_CRASH_AT"
CRASH_ARMED_ENV: Final = "ROTATOR_CRASH_ARMED_BY"
CRASH_EXIT_CODE: Final = 86


def crash_hook(point_spec: str | None, armed_by: str | None = None) -> Callable[[str], None]:
    """Fault injection for tests: kill the process outright at a named step boundary.

    `os._exit` skips every cleanup, which is what a SIGKILL or an OOM kill does: nothing gets
    a chance to persist status, so the restarted operator sees exactly what was on disk.

    ``armed_by``: a file path; the points fire only while it exists, so one process can run a
    policy's first rotation through them untouched and die in the next one (a test saves an
    operator start per crash point).
    """
    points = {p.strip() for p in (point_spec or "").split(",") if p.strip()}

    def checkpoint(point: str) -> None:
        if point in points and (armed_by is None or os.path.exists(armed_by)):
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


def may_watch_workloads(kube: Kube, namespaces: list[str]) -> bool:
    """Whether the handlers' label-selected workload watches will see anything: rotator may list
    and watch every workload kind (in each watched namespace). When not (RBAC from before the
    watch), say which grant is missing; restart and verify then read workloads with a GET."""
    from rotator.workloads.kinds import KINDS

    for info in KINDS.values():
        scopes: list[str | None] = list(namespaces) or [None]
        for namespace in scopes:
            for verb in ("list", "watch"):
                if not kube.allowed(verb, info.group, info.plural, namespace):
                    where = f"in namespace {namespace}" if namespace else "cluster-wide"
                    logging.getLogger("rotator.cli").warning(
                        "rotator may not %s %s.%s %s: workloads are read with a GET on every look "
                        "instead of from a watch; grant it as manifests/clusterrole.yaml does",
                        verb,
                        info.plural,
                        info.group,
                        where,
                    )
                    return False
    return True


def keep_out_the_official_client() -> None:
    """Make ``import kubernetes`` fail in this process, as where it is not installed (the image).

    Kopf imports the official client whenever it is installed, only to recognise its generated
    models as bodies (rotator never hands it one): ~1,000 modules, ~35 MiB of RSS and a fifth of
    the start's import time. A virtualenv with the test dependencies has it installed; the
    operator process still does without it.
    """
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]


def _run(args: argparse.Namespace) -> int:
    keep_out_the_official_client()
    from prometheus_client import start_http_server

    from rotator import engine, handlers, logs
    from rotator.kube import Kube, WatchCache, load_api_client, watched_object
    from rotator.leader import LeaderElector
    from rotator.metrics import Metrics
    from rotator.models import Settings
    from rotator.policy.ratelimit import TokenBucket
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
        limiter=TokenBucket(args.kube_qps, args.kube_burst),
    )
    workloads = may_watch_workloads(kube, args.namespace or [])
    kube.cache = WatchCache(functools.partial(watched_object, workloads=workloads))  # fed by the watches
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
    opener = StoreOpener(kube, metrics, credential_ttl=args.resync)
    allowed = frozenset(args.allowed_store_address or ())
    election = leader_election_settings(args)
    elector = LeaderElector(kube, election) if election.enabled else None
    crash = crash_hook(os.environ.get(CRASH_ENV), os.environ.get(CRASH_ARMED_ENV))

    def checkpoint(point: Checkpoint) -> None:
        crash(point)
        if elector is not None:
            elector.stop_unless_leading(point)  # a deposed leader stops here

    deps = engine.Deps(
        kube=kube,
        resolve_store=StoreResolver(kube, allowed),
        open_store=opener,
        store_auth_failed=opener.auth_failed,
        open_vault_session=opener.vault_session,
        aws_session=opener.aws_session,
        metrics=metrics,
        checkpoint=checkpoint,
        settings=Settings(
            idle_resync=args.idle_resync,
            resync=args.resync,
            poll=args.poll,
            reconcile_workers=args.reconcile_workers,
            max_rotating=args.max_rotating,
            leader_election=election,
        ),
    )
    if elector is not None:
        elector.start()
    try:
        handlers.run_operator(
            handlers.Runtime(
                deps,
                store_health=opener.health,
                allowed_addresses=allowed,
                leader=elector,
                watch_workloads=workloads,
            ),
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


def _plan_inputs(
    kube: Kube | None, obj: dict[str, Any]
) -> tuple[dict[str, Any] | None, ResolvedStore | None, str | None, dict[tuple[str, str], bool] | None]:
    """What the operator would read for one policy, read-only: its live status, its store as
    resolved under the tenancy rules, which restart targets exist. Nothing is written."""
    from rotator.kube import KubeError
    from rotator.models import InvalidSpecError, PermanentError, PolicyRef, parse_spec
    from rotator.tenancy.resolver import StoreResolver
    from rotator.workloads.kinds import kind_for

    if kube is None:
        return None, None, "offline", None
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    try:
        spec = parse_spec(obj.get("spec") or {})
    except InvalidSpecError:
        return None, None, None, None  # the plan says what is invalid
    live = kube.get_policy(namespace, name) if name else None
    status = (live or {}).get("status")
    resolved, problem = None, None
    try:
        resolved = StoreResolver(kube)(PolicyRef(namespace, name, str(meta.get("uid") or "")), spec)
    except (PermanentError, KubeError, ValueError) as exc:
        problem = str(exc)
    existing: dict[tuple[str, str], bool] = {}
    for target in spec.restart.targets:
        # Not allowed to look: no entry, and the plan says "not found" only when it was.
        with contextlib.suppress(KubeError):
            existing[(str(target.kind), target.name)] = (
                kube.get(kind_for(target.kind).path(namespace, target.name)) is not None
            )
    return status, resolved, problem, existing


def _plan(args: argparse.Namespace) -> int:
    import json

    from rotator.kube import GROUP, PLURAL, VERSION, KubeError, policy_path
    from rotator.models.manifests import ManifestError, load_manifests
    from rotator.models.status import utcnow
    from rotator.plan import Plan, plan_policy, render

    if args.name and args.file:
        print("rotator plan: give a NAME or -f FILE, not both")
        return 2
    kube = None if args.offline and args.file else _kube(args)
    try:
        if args.file:
            objects = []
            for doc in load_manifests(args.file):
                if isinstance(doc, dict) and doc.get("kind") == "RotationPolicy":
                    meta = dict(doc.get("metadata") or {})
                    meta.setdefault("namespace", args.namespace or "default")
                    objects.append({**doc, "metadata": meta})
        elif args.name:
            found = kube.get_policy(args.namespace or "default", args.name) if kube else None
            if found is None:
                print(f"rotator plan: RotationPolicy {args.namespace or 'default'}/{args.name} not found")
                return 1
            objects = [found]
        else:
            assert kube is not None
            path = policy_path(args.namespace) if args.namespace else f"/apis/{GROUP}/{VERSION}/{PLURAL}"
            objects = kube.list(path)
        now = utcnow()
        plans: list[Plan] = []
        for obj in objects:
            status, resolved, problem, existing = _plan_inputs(kube, obj)
            plans.append(
                plan_policy(
                    obj, now=now, status=status, resolved=resolved, store_problem=problem, existing=existing
                )
            )
    except ManifestError as exc:
        print(f"rotator plan: {args.file}: {exc.problem}")
        return 1
    except KubeError as exc:
        print(f"rotator plan: {exc}")
        return 1
    if args.output == "json":
        print(json.dumps([plan.to_dict() for plan in plans], indent=2))
    else:
        print(render(plans, now) if plans else "no RotationPolicy to plan")
    return 1 if any(plan.error for plan in plans) else 0


def _sandbox(args: argparse.Namespace) -> int:
    from rotator.sandbox.scenario import run_sandbox

    return run_sandbox(Path(args.dir), once=args.once, scenario=args.scenario, metrics_port=args.metrics_port)


def build_parser() -> argparse.ArgumentParser:
    from rotator.models import Settings, keys
    from rotator.policy.ratelimit import DEFAULT_BURST, DEFAULT_QPS

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
        "--kube-qps",
        type=float,
        default=DEFAULT_QPS,
        help="requests/s rotator's own client may send to the API server, a token bucket (0: no "
        "limit; watches and Events take no token); a 429 with Retry-After is honoured",
    )
    run.add_argument(
        "--kube-burst",
        type=int,
        default=DEFAULT_BURST,
        help="requests sent at once before --kube-qps applies",
    )
    run.add_argument(
        "--reconcile-workers",
        type=int,
        default=Settings.reconcile_workers,
        help="threads running reconciles (blocking API and store requests), rotating policies first",
    )
    run.add_argument(
        "--max-rotating",
        type=int,
        default=Settings.max_rotating,
        help="rotations in their active steps at once; more due or forced policies start as these "
        "finish (bounded waves); a started rotation always proceeds",
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
    sandbox.add_argument("--dir", default=".sandbox", help="working directory (kubeconfig, logs, env)")
    sandbox.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="the operator's metrics port (default 0: a free port, printed and written to DIR/env)",
    )
    sandbox.set_defaults(func=_sandbox)

    status = sub.add_parser("status", help="list RotationPolicies with phase, versions and readiness")
    status.add_argument("--kubeconfig")
    status.add_argument("--namespace", "-n", help="only this namespace (default: all)")
    status.set_defaults(func=_status)

    force = sub.add_parser("force", help=f"force one rotation now (sets {keys.FORCE_ROTATE})")
    force.add_argument("name")
    force.add_argument("--namespace", "-n", default="default")
    force.add_argument("--kubeconfig")
    force.add_argument("--value", help="annotation value (default: the current Unix time)")
    force.set_defaults(func=_force)

    plan = sub.add_parser(
        "plan",
        help="what each policy would do now and next (trigger, steps, restarts, when); touches nothing",
    )
    plan.add_argument("name", nargs="?", help="one policy (default: every policy in the namespace(s))")
    plan.add_argument("--file", "-f", help="plan the RotationPolicies in this YAML file (before applying it)")
    plan.add_argument("--namespace", "-n", help="namespace (default: all for a listing, default for NAME/-f)")
    plan.add_argument("--kubeconfig")
    plan.add_argument(
        "--offline", action="store_true", help="with -f: do not read the cluster (plan as a new policy)"
    )
    plan.add_argument("--output", "-o", choices=["text", "json"], default="text")
    plan.set_defaults(func=_plan)

    validate = sub.add_parser("validate", help="check RotationPolicy YAML files against the schema")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
