"""The postgresRole target through the engine, in process, against a real PostgreSQL server:
alternating login roles, verification by a real login, the old role locked only after it, the
failed one locked on rollback, and a named condition for each way the target can refuse."""

from __future__ import annotations

import json
import socket
import urllib.parse
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rotator.models import Step, reasons
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from rotator.sandbox.postgres import PostgresServer
from tests.engine.harness import GRACE, NS, EngineBench, Run
from tests.fixtures.postgres_roles import PgTenant, new_tenant

CONNECTION = "pg-admin"


@pytest.fixture
def tenant(postgres_server: PostgresServer) -> PgTenant:
    return new_tenant(postgres_server)


def seed(
    bench: EngineBench, tenant: PgTenant, *, dsn: str | None = None, labelled: bool = True, **spec: Any
) -> None:
    bench.seed(**demo.postgres_role_spec(CONNECTION, tenant.role, tenant.group), **spec)
    demo.create(
        bench.kube,
        f"/api/v1/namespaces/{NS}/secrets",
        demo.target_connection_secret(NS, CONNECTION, dsn or tenant.admin_dsn, labelled=labelled),
    )


def secret_credential(bench: EngineBench) -> tuple[str, str]:
    username, password = bench.secret_value("username"), bench.secret_value("password")
    assert username is not None
    assert password is not None
    return username, password


def force(bench: EngineBench, value: str) -> list[Run]:
    bench.annotate(FORCE_ROTATE, value)
    return bench.rotate_to_end()


def test_alternating_roles_rotate_at_the_source_and_lock_the_old_one_after_verify(
    bench: EngineBench, tenant: PgTenant
) -> None:
    seed(bench, tenant, revoke=GRACE)  # so that a reconcile stops at revoke (see GRACE)
    first = bench.rotate_to_end()[-1]
    assert first.status.last_result == "Succeeded"
    role_a, password_a = secret_credential(bench)
    assert role_a == tenant.roles[0]
    assert tenant.can_login(role_a, password_a)
    assert tenant.role_attributes(role_a) == (True, True), "login role, member of the group"
    url = bench.secret_value("DATABASE_URL")
    assert url == f"postgresql://{role_a}:{urllib.parse.quote(password_a, safe='')}@db:5432/app"
    stored = json.loads(bench.store_value(first.status.current_version or "") or "{}")
    assert stored == {"username": role_a, "password": password_a}, "the store holds both fields"

    # A session opened with the old role before the rotation survives it (never dropped).
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(tenant.server.dsn, user=role_a, password=password_a), autocommit=True
    ) as session:
        second = force(bench, "one")
        assert second[-1].status.last_result == "Succeeded"
        role_b, password_b = secret_credential(bench)
        assert role_b == tenant.roles[1]
        assert tenant.can_login(role_b, password_b)
        assert not tenant.can_login(role_a, password_a), "the old role is locked after verify"
        assert tenant.role_attributes(role_a) == (False, True), "locked (NOLOGIN), not dropped"
        assert session.execute("SELECT current_user").fetchone() == (role_a,)

    third = force(bench, "two")
    assert third[-1].status.last_result == "Succeeded"
    role, password = secret_credential(bench)
    assert (role, password != password_a) == (role_a, True), "back to _a with a fresh password"
    assert tenant.can_login(role, password)
    assert not tenant.can_login(role_b, password_b)
    steps = [run.status.rotation.step for run in third if run.status.rotation is not None]
    assert {Step.VERIFY, Step.REVOKE} <= set(steps)
    said = json.dumps([[run.events, run.status.model_dump(mode="json")] for run in [*second, *third]])
    assert not [v for v in (password_a, password_b, password) if v in said], "a password in status/Events"


def test_old_role_still_logs_in_until_revoke(bench: EngineBench, tenant: PgTenant) -> None:
    seed(bench, tenant, revoke=GRACE)
    bench.rotate_to_end()
    role_a, password_a = secret_credential(bench)
    bench.annotate(FORCE_ROTATE, "dual")
    bench.rotate_to_step(Step.REVOKE)
    role_b, password_b = secret_credential(bench)
    assert role_b != role_a
    assert tenant.can_login(role_a, password_a), "the old credential is valid during the rollout"
    assert tenant.can_login(role_b, password_b)


def test_a_new_credential_the_database_refuses_rolls_back_and_the_old_one_keeps_working(
    bench: EngineBench, tenant: PgTenant
) -> None:
    seed(bench, tenant)
    bench.rotate_to_end()
    role_a, password_a = secret_credential(bench)
    bench.annotate(FORCE_ROTATE, "broken")
    bench.rotate_to_step(Step.VERIFY)
    # The fault at the target: the new role's password changes behind rotator's back.
    tenant.superuser(
        sql.SQL("ALTER ROLE {} PASSWORD 'not-what-rotator-set'").format(sql.Identifier(tenant.roles[1]))
    )
    runs = bench.rotate_to_end()
    assert runs[-1].status.last_result == "RolledBack"
    assert any(
        "does not authenticate" in (r.status.rotation.last_error or "") for r in runs if r.status.rotation
    )
    assert secret_credential(bench) == (role_a, password_a), "consumers are back on the old role"
    assert tenant.can_login(role_a, password_a), "the old credential was never revoked"
    assert tenant.role_attributes(tenant.roles[1]) == (False, True), "the failed role is locked"


def test_a_role_rotator_did_not_create_is_refused_by_name(bench: EngineBench, tenant: PgTenant) -> None:
    tenant.superuser(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'theirs'").format(sql.Identifier(tenant.roles[0]))
    )
    seed(bench, tenant)
    runs = bench.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))
    assert runs[-1].status.last_result == "RolledBack"
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(f"spec.credential.postgresRole.role: role '{tenant.roles[0]}' exists" in e for e in errors), (
        errors
    )
    assert tenant.can_login(tenant.roles[0], "theirs"), "someone else's role is left alone"


def test_an_admin_without_createrole_is_a_named_privilege_condition(
    bench: EngineBench, postgres_server: PostgresServer
) -> None:
    tenant = new_tenant(postgres_server, createrole=False)
    seed(bench, tenant)
    runs = bench.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(
        e.startswith("spec.credential.postgresRole.groupRole: the admin role") and "permission denied" in e
        for e in errors
    ), errors
    assert reasons.TARGET_PRIVILEGES in [reason for run in runs for reason in run.reasons]
    assert runs[-1].status.last_result == "RolledBack"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_temporary_and_named(bench: EngineBench, tenant: PgTenant) -> None:
    dsn = psycopg.conninfo.make_conninfo(tenant.admin_dsn, port=str(free_port()))
    seed(bench, tenant, dsn=dsn)
    bench.rotate_to_step(Step.DUAL)  # minting needs no connection: the store holds the new one
    run = bench.reconcile()
    assert run.step == Step.DUAL
    assert run.temporary
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.TARGET_UNAVAILABLE)
    assert message.startswith("credential target unavailable since")
    assert "unreachable" in message
    assert tenant.admin_password not in message


def test_an_unlabelled_connection_secret_is_refused(bench: EngineBench, tenant: PgTenant) -> None:
    seed(bench, tenant, labelled=False)
    runs = bench.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any("is not labelled rotator.dev/target-credential=true" in e for e in errors), errors
    assert tenant.role_attributes(tenant.roles[0]) is None, "nothing was created at the target"
