"""Drift found by watching, and requests counted from the operator's own /metrics (issue 11).

The operator runs with its default safety resync (10 minutes): whatever it repairs within
seconds here, the watch on managed Secrets found. The counts come from
``rotator_kube_requests_total`` and ``rotator_store_requests_total`` (real HTTP requests to
OpenBao, one per request the Vault store makes, short retries aside;
tests/integration/test_store_request_counts.py counts them on the wire and explains where each
of a rotation's 8 goes).
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter

from rotator.kube import secret_path
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from tests.fixtures.figures import figure
from tests.fixtures.rotation import NAMESPACE, Bench

SECONDS = 5.0


def _counters(bench: Bench, name: str) -> Counter[str]:
    found: Counter[str] = Counter()
    pattern = re.compile(rf"^{name}\{{(.*)\}} ([0-9.e+]+)$")
    for line in bench.metrics_text().splitlines():
        if match := pattern.match(line):
            found[match.group(1)] += int(float(match.group(2)))
    return found


def _operator_requests(bench: Bench) -> tuple[Counter[str], Counter[str]]:
    kube = _counters(bench, "rotator_kube_requests_total")
    kube = Counter({k: v for k, v in kube.items() if 'resource="leases"' not in k})  # the elector's
    return kube, _counters(bench, "rotator_store_requests_total")


def _settle(bench: Bench, **spec: object) -> None:
    bench.seed(extra_spec=spec or None)
    bench.operator.start()
    bench.wait_rotations(1)
    time.sleep(1.0)


def test_drift_is_repaired_within_seconds_by_the_watch(bench: Bench) -> None:
    _settle(bench)
    good = bench.secret_value()
    secret = dict(bench.secret() or {})
    secret["data"] = {"password": "dGFtcGVyZWQtdmFsdWU="}  # "tampered-value"
    started = time.monotonic()
    bench.kube.replace_secret(NAMESPACE, demo.SECRET, secret)
    bench.wait(lambda o: bench.secret_value() == good, SECONDS, "drift repaired")
    print(f"drift repaired in {time.monotonic() - started:.2f}s")
    bench.wait(lambda o: "SecretDriftRepaired" in bench.event_reasons(), SECONDS, "the drift Event")


def test_a_deleted_managed_secret_is_recreated_within_seconds(bench: Bench) -> None:
    _settle(bench)
    good = bench.secret_value()
    started = time.monotonic()
    bench.kube.request("DELETE", secret_path(NAMESPACE, demo.SECRET))
    bench.wait(lambda o: bench.secret_value() == good, SECONDS, "Secret recreated")
    print(f"Secret recreated in {time.monotonic() - started:.2f}s")


def test_requests_per_rotation_and_at_rest_from_the_metrics(bench: Bench) -> None:
    _settle(bench, revoke={"gracePeriod": "0s"})  # issue 11's rotation: a grace period waits once more
    before_kube, before_store = _operator_requests(bench)
    time.sleep(5.0)  # at rest: between resyncs an idle policy costs nothing
    kube, store = _operator_requests(bench)
    assert (kube - before_kube, store - before_store) == (Counter(), Counter())
    bench.kube.merge_patch(
        f"/apis/rotator.dev/v1alpha1/namespaces/{NAMESPACE}/rotationpolicies/{demo.POLICY}",
        {"metadata": {"annotations": {FORCE_ROTATE: "count"}}},
    )
    bench.wait_rotations(2)
    time.sleep(1.0)
    after_kube, after_store = _operator_requests(bench)
    kube_used, store_used = after_kube - kube, after_store - store
    figure(f"kube API requests per rotation: {kube_used.total()} {dict(kube_used)}")
    figure(f"vault requests per rotation (the operator's counter): {store_used.total()} {dict(store_used)}")
    # No Secret is read: the managed one comes from the watch cache, the store's static token
    # Secret (tokenSecretRef, not watched) from the opener's credential cache (read once per
    # safety resync); nor the Deployment: restarted before, it is watched by label. Verify is
    # woken by the rollout's events and writes status once while it waits (a stable message).
    assert kube_used['resource="secrets",verb="get"'] == 0
    assert kube_used['resource="deployments",verb="get"'] == 0
    assert kube_used['resource="events",verb="create"'] == 3
    assert kube_used.total() <= 15, "issue 11's goal, Events included"
    # 8 a rotation, plus the mount's configuration read once per session (this is the
    # session's first rotation with an old version to keep).
    assert store_used.total() <= 9


def _use_token(bench: Bench, token: str) -> None:
    secret = dict(bench.kube.get_secret(NAMESPACE, demo.TOKEN_SECRET) or {})
    secret["data"] = {"token": base64.b64encode(token.encode()).decode()}
    bench.kube.replace_secret(NAMESPACE, demo.TOKEN_SECRET, secret)


def test_a_replaced_store_token_is_read_again_once_vault_refuses_the_old_one(bench: Bench) -> None:
    """The token Secret is cached for a safety resync (not watched); a refusal drops the cache."""
    bench.seed(create_policy=False)
    tokens = bench.vault_client().auth.token
    first = tokens.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    _use_token(bench, first)
    bench.create_policy()
    bench.operator.start()
    bench.wait_rotations(1)
    second = tokens.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    _use_token(bench, second)
    tokens.revoke(first)
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"


def test_the_operator_lists_and_watches_secrets_only_by_its_label(bench: Bench) -> None:
    """RBAC cannot restrict a list or watch by label: the operator must ask with the selector,
    every time (its informer's list and watch of Secrets), never for all Secrets."""
    _settle(bench)
    history = bench.kube_server.call(lambda emulator: list(emulator.history))
    reads = [r for r in history if str(r.url.path).endswith("/secrets") and r.method == "GET"]
    assert {r.params.get("watch") == "true" for r in reads} == {True, False}, "both a list and a watch"
    assert {r.params.get("labelSelector") for r in reads} == {"app.kubernetes.io/managed-by=rotator"}


def test_every_watch_reports_itself_healthy_on_the_metrics(bench: Bench) -> None:
    """``rotator_watch_healthy``: one series per watch the operator runs (every one of them an
    informer, workloads included since its RBAC allows them), each 1 once it lists and watches."""
    _settle(bench)
    pattern = re.compile(r'^rotator_watch_healthy\{watch="([^"]*)"\} ([0-9.e+]+)$')
    watches = {
        match.group(1): float(match.group(2))
        for line in bench.metrics_text().splitlines()
        if (match := pattern.match(line))
    }
    kinds = {name.split("@")[0] for name in watches}
    assert kinds == {
        "clusterrotationstores",
        "rotationpolicies",
        "managed secrets",
        "rotationstores",
        "deployments",
        "statefulsets",
        "daemonsets",
    }
    assert set(watches.values()) == {1.0}, watches
