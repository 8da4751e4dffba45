"""The vaultDatabase target through the engine, in process, against OpenBao's database engine and
a real PostgreSQL: a new lease and user per rotation, the old lease revoked only after verify, the
new one revoked on rollback, the current lease renewed at half its TTL, a lease at its max TTL
replaced before it ends, one revoked behind rotator's back reported and replaced."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import hvac
import pytest

from rotator.models import LeaseStatus, Step, reasons, utcnow
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.postgres import PostgresServer
from tests.engine.harness import GRACE, NS, EngineBench, Run
from tests.fixtures.vault_database import VaultDb, new_vault_db, tenant_token


@pytest.fixture
def vdb(openbao: OpenBaoServer, postgres_server: PostgresServer) -> VaultDb:
    return new_vault_db(openbao, postgres_server)


@pytest.fixture
def vbench(bench: EngineBench, vdb: VaultDb) -> EngineBench:
    """The engine bench on the real clock (Vault's leases run on it), sharing the root client as
    the store's Vault session."""
    bench.now = utcnow().replace(microsecond=0)
    client = vdb.client
    original = bench.deps

    def deps(**overrides: Any) -> Any:
        overrides.setdefault("open_vault_session", lambda ref, resolved: client)
        return original(**overrides)

    bench.deps = deps  # type: ignore[method-assign]
    return bench


def seed(bench: EngineBench, vdb: VaultDb, *, login: bool = True, **spec: Any) -> None:
    bench.seed(**demo.vault_database_spec(vdb.mount, vdb.role, vdb.verify if login else None), **spec)


def credential(bench: EngineBench, version: str) -> dict[str, str]:
    stored = json.loads(bench.store_value(version) or "{}")
    assert isinstance(stored, dict)
    return stored


def current(bench: EngineBench) -> dict[str, str]:
    return credential(bench, bench.status().current_version or "")


def settle(bench: EngineBench) -> Run:
    """One idle reconcile after a rotation: the new current lease is looked up."""
    run = bench.reconcile()
    assert run.status.rotation is None
    return run


def force(bench: EngineBench, value: str) -> list[Run]:
    bench.annotate(FORCE_ROTATE, value)
    return bench.rotate_to_end()


def test_each_rotation_mints_a_lease_and_user_and_revokes_the_old_lease_only_after_verify(
    vbench: EngineBench, vdb: VaultDb
) -> None:
    seed(vbench, vdb, revoke=GRACE)
    first = vbench.rotate_to_end()[-1]
    assert first.status.last_result == "Succeeded"
    one = current(vbench)
    assert set(one) == {"username", "password", "leaseId"}
    assert one["leaseId"].startswith(vdb.prefix + "/")
    assert vdb.leases() == [one["leaseId"]]
    assert (vbench.secret_value("username"), vbench.secret_value("password")) == (
        one["username"],
        one["password"],
    )
    assert vbench.secret_value("leaseId") is None, "the Secret carries what consumers need only"
    assert vdb.can_login(one["username"], one["password"])

    lease = settle(vbench).status.lease
    assert lease is not None
    assert (lease.version, lease.id, lease.renewable, lease.ttl_seconds) == (
        first.status.current_version,
        one["leaseId"],
        True,
        3600,
    )

    vbench.annotate(FORCE_ROTATE, "one")
    vbench.rotate_to_revoke()
    two = credential(vbench, vbench.status().rotation.new_version or "")  # type: ignore[union-attr]
    assert two["username"] != one["username"]
    assert vdb.leases() == sorted([one["leaseId"], two["leaseId"]]), "old lease kept until revoke"
    assert vdb.can_login(one["username"], one["password"]), "old user valid during the rollout"
    runs = vbench.rotate_to_end()
    assert runs[-1].status.last_result == "Succeeded"
    assert vdb.leases() == [two["leaseId"]], "exactly one new lease; the old one revoked"
    assert not vdb.can_login(one["username"], one["password"])
    assert not vdb.user_exists(one["username"]), "Vault dropped the old user with its lease"
    assert vdb.can_login(two["username"], two["password"])
    said = json.dumps([[r.events, r.status.model_dump(mode="json")] for r in runs])
    assert one["password"] not in said
    assert two["password"] not in said


def test_a_new_lease_revoked_before_verify_rolls_back_revoking_it_and_keeping_the_old(
    vbench: EngineBench, vdb: VaultDb
) -> None:
    seed(vbench, vdb)
    vbench.rotate_to_end()
    old = current(vbench)
    vbench.annotate(FORCE_ROTATE, "broken")
    vbench.rotate_to_step(Step.VERIFY)
    new = credential(vbench, vbench.status().rotation.new_version or "")  # type: ignore[union-attr]
    vdb.revoke(new["leaseId"])  # the fault at the target: the new user is gone
    runs = vbench.rotate_to_end()
    assert runs[-1].status.last_result == "RolledBack"
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any("does not authenticate" in e and "refused the login" in e for e in errors), errors
    assert (vbench.secret_value("username"), vbench.secret_value("password")) == (
        old["username"],
        old["password"],
    )
    assert vdb.leases() == [old["leaseId"]], "the old lease is never revoked on rollback"
    assert vdb.can_login(old["username"], old["password"])


def test_without_a_login_target_verify_looks_the_lease_up_and_a_failed_rotation_revokes_the_new_lease(
    vbench: EngineBench, vdb: VaultDb
) -> None:
    seed(vbench, vdb, login=False, progress_deadline=1)
    vbench.rotate_to_end()
    old = current(vbench)
    # The consumers fail their rollout with the new credential: the rotation rolls back.
    vbench.server.set_fail_readiness("Deployment", NS, demo.DEPLOYMENT)
    runs = force(vbench, "broken-rollout")
    assert runs[-1].status.last_result == "RolledBack"
    assert vdb.leases() == [old["leaseId"]], "the new lease was revoked, the old one kept"
    vbench.server.set_fail_readiness("Deployment", NS, demo.DEPLOYMENT, False)
    vbench.tick(3600)  # past the pause after a failed rotation
    assert force(vbench, "again")[-1].status.last_result == "Succeeded"
    assert vdb.leases() == [current(vbench)["leaseId"]], "lease lookup verified the new one"


def test_the_current_lease_is_renewed_at_half_its_ttl(vbench: EngineBench, vdb: VaultDb) -> None:
    seed(vbench, vdb)
    vbench.rotate_to_end()
    run = settle(vbench)
    lease = run.status.lease
    assert lease is not None
    assert run.requeue is not None
    assert run.requeue <= 1800, "the idle policy wakes up for the renewal"
    expiry = vbench.metrics.lease_expiry.labels(namespace=NS, policy=demo.POLICY)._value.get()
    assert expiry == lease.expires_at.timestamp()
    quiet = vbench.reconcile(resync=False)
    assert quiet.status.lease == lease, "nothing due: no lookup, no renewal"
    assert vdb.lookup(lease.id)["last_renewal"] is None

    vbench.tick(1801)
    renewed = vbench.reconcile(resync=False).status.lease
    assert renewed is not None
    assert renewed.expires_at == (vbench.now + timedelta(seconds=3600)).replace(microsecond=0)
    assert not renewed.max_ttl_reached
    assert vdb.lookup(lease.id)["last_renewal"] is not None, "renewed in Vault"
    age = vbench.metrics.lease_age.labels(namespace=NS, policy=demo.POLICY)._value.get()
    assert renewed.issued_at is not None
    assert age == (vbench.now - renewed.issued_at).total_seconds(), "the age of the real lease"
    assert age > 1700


def test_a_lease_at_its_max_ttl_brings_a_rotation_before_it_ends(vbench: EngineBench, vdb: VaultDb) -> None:
    vdb.set_role(default_ttl="1h", max_ttl="1h")
    seed(vbench, vdb)
    vbench.rotate_to_end()
    old = current(vbench)
    settle(vbench)
    vbench.tick(1801)
    # Vault caps a renewal at max_ttl minus the lease's real age, in whole seconds: let a second
    # pass on Vault's clock, so the grant is short of the asked TTL however fast this machine is.
    time.sleep(1.1)
    run = vbench.reconcile(resync=False)
    lease = run.status.lease
    assert lease is not None
    assert lease.max_ttl_reached
    assert reasons.LEASE_MAX_TTL in run.reasons
    assert run.status.rotation is None
    due = run.status.next_rotation_time
    assert due is not None
    assert due <= lease.expires_at - timedelta(minutes=30), "half a TTL to spare"
    vbench.now = due
    started = vbench.reconcile()
    assert started.status.rotation is not None
    assert started.status.rotation.reason == "MaxAgeExceeded"
    assert "from its lease" in started.condition("Rotating")[2]
    vbench.rotate_to_end()
    assert vdb.leases() == [current(vbench)["leaseId"]]
    assert current(vbench)["leaseId"] != old["leaseId"]


def test_a_lease_revoked_behind_our_back_is_reported_and_replaced(vbench: EngineBench, vdb: VaultDb) -> None:
    seed(vbench, vdb)
    vbench.rotate_to_end()
    old = current(vbench)
    settle(vbench)
    vdb.revoke(old["leaseId"])
    vbench.tick(1801)  # the next renewal finds out
    run = vbench.reconcile(resync=False)
    status, reason, message = run.condition("Degraded")
    assert (status, reason) == ("True", reasons.LEASE_REVOKED)
    assert "revoked or expired outside rotator" in message
    assert run.status.lease is not None
    assert run.status.lease.gone
    assert run.status.rotation is not None, "a rotation starts at once"
    runs = vbench.rotate_to_end()
    assert runs[-1].status.last_result == "Succeeded"
    assert runs[-1].condition("Degraded")[0] == "False"
    new = current(vbench)
    assert vdb.leases() == [new["leaseId"]]
    assert vdb.can_login(new["username"], new["password"])
    fresh = settle(vbench).status.lease
    assert fresh is not None
    assert not fresh.gone


def test_a_suspended_policy_still_renews_its_lease(vbench: EngineBench, vdb: VaultDb) -> None:
    seed(vbench, vdb)
    vbench.rotate_to_end()
    settle(vbench)
    vbench.edit_spec(suspend=True)
    vbench.tick(1801)
    run = vbench.reconcile()
    assert run.condition("Ready")[1] == reasons.SUSPENDED
    assert run.status.lease is not None
    assert run.status.lease.expires_at == (vbench.now + timedelta(seconds=3600)).replace(microsecond=0)
    assert run.requeue is not None
    assert run.requeue <= 1800


def test_an_aws_store_is_refused_naming_the_field(vbench: EngineBench, vdb: VaultDb) -> None:
    seed(vbench, vdb)
    aws = {
        "awsSecretsManager": {
            "region": "us-east-1",
            "auth": {"webIdentity": {"roleArn": "arn:aws:iam::1:role/r"}},
        }
    }
    vbench.kube.merge_patch(
        f"/apis/rotator.dev/v1alpha1/namespaces/{NS}/rotationstores/{demo.STORE}",
        {"spec": {"vault": None, **aws}},
    )
    run = vbench.reconcile()
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.TARGET_INVALID)
    assert message.startswith("spec.credential.vaultDatabase: the policy's store")
    assert "not Vault" in message
    assert run.status.rotation is None, "nothing started"
    assert vdb.leases() == []


def test_a_store_without_a_vault_session_is_refused_at_mint(bench: EngineBench, vdb: VaultDb) -> None:
    seed(bench, vdb)
    runs = bench.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any("is not a Vault store" in e for e in errors), errors
    assert vdb.leases() == []


def test_an_identity_that_may_not_read_the_role_is_a_named_privilege_condition(
    vbench: EngineBench, vdb: VaultDb, openbao: OpenBaoServer
) -> None:
    token = tenant_token(openbao, 'path "nothing/*" { capabilities = ["read"] }')
    limited = hvac.Client(url=openbao.address, token=token)
    seed(vbench, vdb)
    runs: list[Run] = []
    for _ in range(20):
        run = vbench.reconcile(open_vault_session=lambda ref, resolved: limited)
        runs.append(run)
        if run.status.rotation is None and run.status.history:
            break
        vbench.tick(run.requeue or 0.0)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    prefix = "spec.credential.vaultDatabase: the store's Vault identity may not read"
    assert any(e.startswith(prefix) and "permission denied" in e for e in errors), errors
    assert reasons.TARGET_PRIVILEGES in [reason for run in runs for reason in run.reasons]
    assert vdb.leases() == []


def test_an_adopted_value_that_is_no_vault_credential_has_no_lease(vbench: EngineBench, vdb: VaultDb) -> None:
    seed(vbench, vdb, adopt=True)
    vbench.store.seed("not-json-at-all")  # a plain password someone wrote before rotator
    assert vbench.reconcile().status.current_version is not None, "adopted"
    run = vbench.reconcile()
    assert run.status.lease is None, "nothing to look up in a value that is no credential of ours"
    assert run.condition("Degraded")[1] == reasons.CURRENT_UNREADABLE


def test_a_policy_that_stops_being_vault_database_forgets_its_lease(
    vbench: EngineBench, vdb: VaultDb
) -> None:
    seed(vbench, vdb)
    vbench.rotate_to_end()
    assert settle(vbench).status.lease is not None
    vbench.edit_spec(credential={"vaultDatabase": None, "password": {}}, secret={"template": None})
    vbench.rotate_to_end()
    run = settle(vbench)
    assert run.status.lease is None
    samples = [s for metric in vbench.metrics.lease_expiry.collect() for s in metric.samples]
    assert samples == [], "no lease series for a policy without a lease"


def test_lease_status_round_trips() -> None:
    now = utcnow().replace(microsecond=0)
    lease = LeaseStatus(version="1", id="db/creds/r/x", expires_at=now, ttl_seconds=60, renewable=True)
    assert LeaseStatus.from_raw(lease.to_patch()) == lease
