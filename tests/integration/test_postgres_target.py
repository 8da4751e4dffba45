"""postgresRole through the operator process (emulator + rollout simulator, OpenBao, a real
PostgreSQL): consumers that really log in never see a refused login across many rotations, and a
crash at any step boundary leaves exactly one new credential, nothing retired before verify."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pytest
from psycopg import sql

from rotator.sandbox import demo
from rotator.sandbox.postgres import PostgresServer
from tests.fixtures.figures import figure
from tests.fixtures.postgres_roles import PgTenant, new_tenant
from tests.fixtures.rotation import NAMESPACE, TARGET_CRASH_POINTS, Bench

CONNECTION = "pg-admin"
ROTATIONS = 20


def seed(bench: Bench, tenant: PgTenant, *, progress_deadline: int = 600) -> None:
    """The policy's consumers log in (the rollout simulator's pods, rotator.sandbox.consumers)."""
    login = f"{tenant.server.host}:{tenant.server.port}/postgres"
    bench.seed(create_policy=False, login=login, progress_deadline=progress_deadline)
    demo.create(
        bench.kube,
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        demo.target_connection_secret(NAMESPACE, CONNECTION, tenant.admin_dsn),
    )
    bench.create_policy(extra_spec=demo.postgres_role_spec(CONNECTION, tenant.role, tenant.group))


@dataclass
class PodLoginRecord:
    """Polls the simulator's pods: the most logins and refusals each pod ever reported, and
    whether it was ever ready."""

    bench: Bench
    logins: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    ever_ready: set[str] = field(default_factory=set)

    def poll(self) -> None:
        for pod in self.bench.pods():
            self.logins[pod.name] = max(self.logins.get(pod.name, 0), pod.logins)
            self.refused[pod.name] = max(self.refused.get(pod.name, 0), pod.refused_logins)
            if pod.ready:
                self.ever_ready.add(pod.name)


@dataclass
class LiveLogins:
    """The consumers: every ready pod logs in over and over with the credential of the Secret
    version it started with (the rollout simulator records it per pod). A refused login of a pod
    that still exists afterwards is a violation: the old credential stopped working too early."""

    bench: Bench
    tenant: PgTenant
    attempts: int = 0
    refused: list[str] = field(default_factory=list)
    pods: PodLoginRecord = field(init=False)
    versions_used: set[str] = field(default_factory=set)
    _credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pods = PodLoginRecord(self.bench)

    def __enter__(self) -> LiveLogins:
        # Two consumer loops: each PostgreSQL login costs a SCRAM exchange (4096 PBKDF2 rounds
        # on both sides), so one loop alone stays below 20 logins/s on a 2-core machine.
        self._threads = [
            threading.Thread(target=self._run, name=f"consumers-{i}", daemon=True) for i in range(2)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _credential(self, version: str) -> tuple[str, str] | None:
        with self._lock:
            return self._credential_locked(version)

    def _credential_locked(self, version: str) -> tuple[str, str] | None:
        if version not in self._credentials:
            value = self.bench.kv_value(int(version))
            if value is None:
                return None
            document = json.loads(value)
            self._credentials[version] = (document["username"], document["password"])
        return self._credentials[version]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.pods.poll()
            for pod in self.bench.pods():
                version = pod.secret_versions[demo.SECRET].version
                credential = self._credential(version) if pod.ready and version else None
                if credential is None or version is None:
                    continue
                with self._lock:
                    self.attempts += 1
                    self.versions_used.add(version)
                if not self.tenant.can_login(*credential) and pod.name in {p.name for p in self.bench.pods()}:
                    with self._lock:
                        self.refused.append(f"pod {pod.name} (version {version}, role {credential[0]})")


@pytest.mark.long(seconds=27)
def test_twenty_rotations_under_live_logins_refuse_no_consumer(
    bench: Bench, postgres_server: PostgresServer
) -> None:
    tenant = new_tenant(postgres_server)
    seed(bench, tenant)
    bench.operator.start()
    bench.wait_rotations(1)
    started = time.monotonic()
    with LiveLogins(bench, tenant) as consumers:
        for i in range(ROTATIONS):
            bench.force(f"live-{i}")
            status = bench.wait_forced(f"live-{i}")
            assert status["history"][0]["result"] == "Succeeded", status["history"][0]
    elapsed = time.monotonic() - started
    figure(
        f"postgresRole: {ROTATIONS} rotations in {elapsed:.0f} s under {consumers.attempts} logins "
        f"({consumers.attempts / elapsed:.0f}/s), {len(consumers.refused)} refused"
    )
    assert not consumers.refused, consumers.refused[:5]
    # The pods' own login loops (the simulator's consumers) agree: never refused, and each
    # rotation's pods logged in before they became ready.
    assert not {pod: n for pod, n in consumers.pods.refused.items() if n}
    assert sum(consumers.pods.logins.values()) >= 2 * ROTATIONS
    assert len(consumers.versions_used) >= ROTATIONS, "every credential handed to pods was exercised"
    active, password = bench.secret_value("username"), bench.secret_value("password")
    assert active is not None
    assert password is not None
    assert tenant.can_login(active, password)
    retired = next(role for role in tenant.roles if role != active)
    assert tenant.role_attributes(retired) == (False, True), "the previous role is locked, not dropped"


@pytest.mark.parametrize("point", TARGET_CRASH_POINTS)
def test_crash_at_every_step_leaves_one_working_credential(
    bench: Bench, postgres_server: PostgresServer, point: str
) -> None:
    tenant = new_tenant(postgres_server)
    seed(bench, tenant)
    bench.start_armed(point)
    bench.wait_rotations(1)
    first = json.loads(bench.kv_value(1) or "{}")

    bench.crash_in_forced_rotation(point)
    rotation = bench.status().get("rotation") or {}
    if not tenant.can_login(first["username"], first["password"]):
        assert rotation.get("verifiedAt"), f"old role retired before verification (crash at {point})"

    bench.operator.start()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    assert sorted(bench.kv_versions()) == [1, 2], "a crash produced a second new credential"
    second = json.loads(bench.kv_value(2) or "{}")
    assert second["username"] == tenant.roles[1]
    assert (bench.secret_value("username"), bench.secret_value("password")) == (
        second["username"],
        second["password"],
    )
    assert tenant.can_login(second["username"], second["password"])
    assert not tenant.can_login(first["username"], first["password"])
    assert tenant.role_attributes(first["username"]) == (False, True)


def test_a_credential_the_database_refuses_never_reaches_a_ready_pod_and_rolls_back(
    bench: Bench, postgres_server: PostgresServer
) -> None:
    """The fault switch at the target: role _b may not connect (CONNECTION LIMIT 0, which the
    password change does not reset). New pods fail their first login and never become ready; the
    rollout fails at its deadline, rotator rolls back, the old role keeps working throughout."""
    tenant = new_tenant(postgres_server)
    seed(bench, tenant, progress_deadline=3)
    bench.operator.start()
    bench.wait_rotations(1)
    for count in (2, 3):  # _a, then _b, then _a again: role _b exists and is rotator's
        bench.force(f"warm-{count}")
        bench.wait_rotations(count)
    old = (bench.secret_value("username"), bench.secret_value("password"))
    assert old[0] == tenant.roles[0]
    tenant.superuser(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 0").format(sql.Identifier(tenant.roles[1])))
    record = PodLoginRecord(bench)
    bench.force("broken")
    status = bench.wait(
        lambda obj: (
            (record.poll(), obj)[1].get("status", {}).get("lastHandledForceRotate") == "broken"
            and not (obj.get("status") or {}).get("rotation")
        ),
        timeout=90,
        what="the broken rotation to end",
    )["status"]
    assert status["history"][0]["result"] == "RolledBack", status["history"][0]
    assert (bench.secret_value("username"), bench.secret_value("password")) == old
    assert tenant.can_login(*old), "the old credential was never revoked"
    refused_ready = {pod: n for pod, n in record.refused.items() if n and pod in record.ever_ready}
    assert not refused_ready, f"a ready consumer was refused: {refused_ready}"
    assert any(n for pod, n in record.refused.items() if pod not in record.ever_ready), (
        "the new pods tried the refused credential"
    )
    assert tenant.role_attributes(tenant.roles[1]) == (False, True), "the failed role is locked"
