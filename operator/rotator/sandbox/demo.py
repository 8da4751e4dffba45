"""The demo objects the sandbox applies: CRD, namespace, Vault token, a consumer, a policy.

Also used by the integration tests, so the sandbox and the suite exercise the same shapes.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

import rotator
from rotator.kube import API_VERSION, Kube, KubeConflict, policy_path
from rotator.models.keys import STORE_CREDENTIAL_LABEL, TARGET_CREDENTIAL_LABEL
from rotator.sandbox.consumers import LOGIN_ANNOTATION

NAMESPACE: Final = "demo"
POLICY: Final = "demo-db"
SECRET: Final = "demo-db-credentials"
DEPLOYMENT: Final = "demo-app"
TOKEN_SECRET: Final = "vault-token"
STORE: Final = "vault"
CRD_FILE: Final = "rotationpolicies.rotator.dev.yaml"
STORE_CRD_FILE: Final = "rotationstores.rotator.dev.yaml"


def crd_path(name: str = CRD_FILE) -> Path:
    """A CRD file in the source tree (editable install) or shipped beside the package (image)."""
    package = Path(rotator.__file__).resolve().parent
    for candidate in (package.parents[1] / "crds" / name, package / "crds" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found next to the rotator package")


def load_crd() -> dict[str, Any]:
    """The RotationPolicy CRD."""
    doc = yaml.safe_load(crd_path().read_text())
    assert isinstance(doc, dict)
    return doc


def load_crds() -> list[dict[str, Any]]:
    """Every CRD rotator defines: RotationPolicy, RotationStore, ClusterRotationStore."""
    docs = [load_crd(), *yaml.safe_load_all(crd_path(STORE_CRD_FILE).read_text())]
    return [doc for doc in docs if isinstance(doc, dict)]


def apply_crd(kube: Kube) -> None:
    for crd in load_crds():
        with contextlib.suppress(KubeConflict):
            kube.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    # Discovery of the new resources is immediate in the emulator, eventual on a real cluster.
    deadline = time.monotonic() + 10
    while kube.get(f"/apis/{API_VERSION}") is None and time.monotonic() < deadline:
        time.sleep(0.05)


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def token_secret(ns: str, token: str, name: str = TOKEN_SECRET) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        # The opt-in a store needs before it reads a credential from a Secret.
        "metadata": {"name": name, "namespace": ns, "labels": {STORE_CREDENTIAL_LABEL: "true"}},
        "type": "Opaque",
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }


def target_connection_secret(ns: str, name: str, dsn: str, *, labelled: bool = True) -> dict[str, Any]:
    """The admin connection of a postgresRole target, opted in for rotator by its label."""
    labels = {TARGET_CREDENTIAL_LABEL: "true"} if labelled else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"dsn": base64.b64encode(dsn.encode()).decode()},
    }


def postgres_role_spec(
    connection_secret: str, role: str, group_role: str, secret: str = SECRET
) -> dict[str, Any]:
    """``spec.secret`` + ``spec.credential`` of an alternating-users policy, with a connection
    string rendered for the consumers."""
    url = "postgresql://{{ .username }}:{{ .password | urlquery }}@db:5432/app"
    postgres = {"connectionSecretRef": {"name": connection_secret}, "role": role, "groupRole": group_role}
    return {
        "secret": {"name": secret, "template": {"DATABASE_URL": url}},
        "credential": {"postgresRole": postgres},
    }


def vault_database_spec(
    mount: str, role: str, verify: Mapping[str, Any] | None = None, secret: str = SECRET
) -> dict[str, Any]:
    """``spec.secret`` + ``spec.credential`` of a Vault database policy (leases of ``role``),
    with a connection string rendered for the consumers."""
    url = "postgresql://{{ .username }}:{{ .password | urlquery }}@db:5432/app"
    vault_database: dict[str, Any] = {"mount": mount, "role": role}
    if verify is not None:
        vault_database["verify"] = dict(verify)
    return {
        "secret": {"name": secret, "template": {"DATABASE_URL": url}},
        "credential": {"vaultDatabase": vault_database},
    }


def vault_store(ns: str, vault_address: str, name: str = STORE, **spec: Any) -> dict[str, Any]:
    """A namespaced RotationStore on Vault with a token from the namespace's ``vault-token``."""
    vault = {
        "address": vault_address,
        "kvMount": "secret",
        "auth": {"tokenSecretRef": {"name": TOKEN_SECRET, "key": "token"}},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "RotationStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"vault": vault, "pathPrefix": "{namespace}/", **spec},
    }


def service_account(ns: str, name: str = "rotator") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}


def consumer_deployment(
    ns: str,
    name: str = DEPLOYMENT,
    secret: str = SECRET,
    replicas: int = 3,
    progress_deadline: int = 10,
    login: str | None = None,
) -> dict[str, Any]:
    """A Deployment whose pods read ``secret``; with ``login`` (``host:port/database``) they also
    log in to that PostgreSQL server with its username and password (rotator.sandbox.consumers)."""
    labels = {"app": name}
    env: list[dict[str, Any]] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}
    ]
    template_meta: dict[str, Any] = {"labels": labels}
    if login is not None:
        env.append({"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "username"}}})
        template_meta["annotations"] = {LOGIN_ANNOTATION: login}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": [{"name": "app", "image": "registry.example/demo-app:1.0", "env": env}]
                },
            },
        },
    }


def rotation_policy(
    ns: str,
    name: str = POLICY,
    secret: str = SECRET,
    deployment: str | None = DEPLOYMENT,
    path: str | None = None,
    store: str = STORE,
    extra_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A policy on the namespace's store; ``path`` is below the store's prefix (default: the name)."""
    spec: dict[str, Any] = {
        "secret": {"name": secret, "key": "password", "previousKey": "password.previous"},
        "credential": {"password": {"length": 32, "alphabet": "alphanumeric"}},
        "storeRef": {"kind": "RotationStore", "name": store},
        "path": path or name,
        "schedule": {"interval": "720h", "maxAge": "2160h"},
        "restart": {"targets": [{"kind": "Deployment", "name": deployment}] if deployment else []},
        "verify": {"timeout": "60s"},
        "revoke": {"gracePeriod": "2s"},
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": API_VERSION,
        "kind": "RotationPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def create(kube: Kube, path: str, body: Mapping[str, Any]) -> None:
    with contextlib.suppress(KubeConflict):  # already there: seeding is re-runnable
        kube.create(path, body)


def seed(kube: Kube, vault_address: str, vault_token: str, ns: str = NAMESPACE) -> None:
    """Everything `rotator sandbox` shows: a consumer first, then the policy that rotates its Secret."""
    apply_crd(kube)
    create(kube, "/api/v1/namespaces", namespace(ns))
    create(kube, f"/api/v1/namespaces/{ns}/secrets", token_secret(ns, vault_token))
    create(kube, store_collection(ns), vault_store(ns, vault_address))
    create(kube, f"/apis/apps/v1/namespaces/{ns}/deployments", consumer_deployment(ns))
    create(kube, policy_path(ns), rotation_policy(ns))


PG_POLICY: Final = "demo-pg"
PG_SECRET: Final = "demo-pg-credentials"
PG_DEPLOYMENT: Final = "demo-pg-app"
PG_CONNECTION: Final = "demo-pg-admin"
PG_ADMIN: Final = "rotator_admin"
PG_ROLE: Final = "demo_app"
PG_GROUP: Final = "demo_app_rw"


def seed_postgres(kube: Kube, superuser_dsn: str, host: str, port: int, ns: str = NAMESPACE) -> None:
    """The alternating-users demo: an admin role with CREATEROLE (what a platform team hands
    rotator), its connection Secret, a consumer whose pods log in, and the postgresRole policy."""
    admin_password = secrets.token_urlsafe(18)
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_ADMIN,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(PG_ADMIN), sql.Literal(admin_password)
            )
        )
    dsn = make_conninfo(superuser_dsn, user=PG_ADMIN, password=admin_password)
    create(kube, f"/api/v1/namespaces/{ns}/secrets", target_connection_secret(ns, PG_CONNECTION, dsn))
    deployment = consumer_deployment(
        ns, name=PG_DEPLOYMENT, secret=PG_SECRET, replicas=2, login=f"{host}:{port}/postgres"
    )
    create(kube, f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)
    policy = rotation_policy(
        ns,
        name=PG_POLICY,
        deployment=PG_DEPLOYMENT,
        extra_spec=postgres_role_spec(PG_CONNECTION, PG_ROLE, PG_GROUP, secret=PG_SECRET),
    )
    create(kube, policy_path(ns), policy)


def store_collection(ns: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{ns}/rotationstores"
