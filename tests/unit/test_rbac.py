"""The RBAC the manifests grant is exactly what the code uses (issue 7: least privilege).

NEEDED is the inventory of API calls the operator makes, with where each comes from; the cluster
and the namespaced install must grant all of it and nothing more (no list/watch/delete on
Secrets, no wildcard). A verb added to the code without RBAC, or RBAC without a caller, fails here;
the real-control-plane tier then proves the grants against an enforcing kube-apiserver.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

NAMESPACED_NEEDS: frozenset[Grant] = frozenset(
    {
        *{("rotator.dev", "rotationpolicies", v) for v in ("get", "list", "watch")},  # informer + engine
        ("rotator.dev", "rotationpolicies/status", "patch"),  # engine/draft.py persist
        *{
            ("rotator.dev", "rotationstores", v) for v in ("get", "list", "watch")
        },  # tenancy/resolver.py + handlers
        ("rotator.dev", "rotationstores/status", "patch"),  # engine/store_health.py
        ("", "serviceaccounts/token", "create"),  # tenancy/identity.py mint_token
        *{("", "secrets", v) for v in ("get", "create", "update")},  # managed_secret.py, stores/opener.py
        *{("", "secrets", v) for v in ("list", "watch")},  # handlers.py: managed Secrets, by label
        *{
            ("apps", kind, v)
            for kind in ("deployments", "statefulsets", "daemonsets")
            for v in ("get", "list", "watch", "patch")
        },  # workloads/io.py: restart, rollout health, restart.auto discovery (list);
        # handlers.py: the workloads rotator restarted, by label (list + watch)
        ("", "events", "create"),  # kube_events.py: one POST per Event, never a patch
    }
)
CLUSTER_ONLY_NEEDS: frozenset[Grant] = frozenset(
    {
        *{("rotator.dev", "clusterrotationstores", v) for v in ("get", "list", "watch")},
        ("rotator.dev", "clusterrotationstores/status", "patch"),
        ("", "namespaces", "get"),  # a cluster store's label selector
    }
)
LEADER_NEEDS: frozenset[Grant] = frozenset(
    {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}  # rotator/leader.py
)


def leader_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Both installs share the leader-election Role in the operator's own namespace."""
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "rotator-system")
    assert grants(role["rules"]) == LEADER_NEEDS
    return role


def grants(rules: list[dict[str, Any]]) -> set[Grant]:
    found: set[Grant] = set()
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), "no wildcards"
                    found.add((group, resource, verb))
    return found


def render(path: str) -> list[dict[str, Any]]:
    try:
        out = subprocess.run(
            ["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True
        )
    except FileNotFoundError:  # pragma: no cover - kubectl is part of the toolchain
        pytest.fail("kubectl is needed to render the manifests")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_cluster_install_grants_exactly_what_the_code_uses() -> None:
    docs = render("manifests")
    roles = [d for d in docs if d["kind"] == "ClusterRole"]
    assert [r["metadata"]["name"] for r in roles] == ["rotator"]
    assert [d for d in docs if d["kind"] == "Role"] == [leader_role(docs)], "no other namespaced Role"
    assert grants(roles[0]["rules"]) == NAMESPACED_NEEDS | CLUSTER_ONLY_NEEDS


def test_namespaced_install_grants_namespace_rights_only_in_its_namespaces() -> None:
    docs = render("manifests/namespaced")
    cluster = [d for d in docs if d["kind"] == "ClusterRole"]
    leader = leader_role(docs)
    roles = [d for d in docs if d["kind"] == "Role" and d is not leader]
    assert grants(cluster[0]["rules"]) == CLUSTER_ONLY_NEEDS
    assert grants(roles[0]["rules"]) == NAMESPACED_NEEDS
    assert roles[0]["metadata"]["namespace"] == "shop"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert "--namespace=shop" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {b["roleRef"]["name"] for b in bindings} == {
        "rotator",
        "rotator-namespaced",
        leader["metadata"]["name"],
    }


def test_secrets_are_never_deleted_and_watched_only_by_label() -> None:
    for path in ("manifests", "manifests/namespaced"):
        every = set()
        for doc in render(path):
            if doc["kind"] in ("ClusterRole", "Role"):
                every |= grants(doc["rules"])
        assert {v for g, r, v in every if r == "secrets"} == {"get", "list", "watch", "create", "update"}
        assert not {v for g, r, v in every if v == "delete"}
    # RBAC cannot restrict list/watch by label; the operator always asks with the selector: its
    # one watch of Secrets is the informer built with it (tests/integration/test_informer.py
    # shows the server then delivers only what the selector selects).
    source = (ROOT / "operator/rotator/handlers.py").read_text()
    (watch,) = [line for line in source.splitlines() if "secret_collection(" in line]
    assert "MANAGED_SECRETS" in watch, "the one watch of Secrets asks with the selector"
    assert '"v1", "secrets"' not in source, "no Kopf watch of Secrets besides it"
