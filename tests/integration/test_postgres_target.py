"""postgresRole through the operator process (emulator + rollout simulator, OpenBao, a real
PostgreSQL): consumers that really log in never see a refused login across many rotations, and a
crash at any step boundary leaves exactly one new credential, nothing retired before verify."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pytest

from rotator.cli import CRASH_EXIT_CODE
from rotator.sandbox import demo
from rotator.sandbox.postgres import PostgresServer
from rotator.steps.checkpoints import Checkpoint
from tests.fixtures.postgres_roles import PgTenant, new_tenant
from tests.fixtures.rotation import NAMESPACE, Bench

CONNECTION = "pg-admin"
ROTATIONS = 20
FORWARD_POINTS = [str(point) for point in Checkpoint if not point.during_rollback]


def seed(bench: Bench, tenant: PgTenant) -> None:
    bench.seed(create_policy=False)
    demo.create(
        bench.kube,
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        demo.target_connection_secret(NAMESPACE, CONNECTION, tenant.admin_dsn),
    )
    bench.create_policy(extra_spec=demo.postgres_role_spec(CONNECTION, tenant.role, tenant.group))


@dataclass
class LiveLogins:
    """The consumers: every ready pod logs in over and over with the credential of the Secret
    version it started with (the rollout simulator records it per pod). A refused login of a pod
    that still exists afterwards is a violation: the old credential stopped working too early."""

    bench: Bench
    tenant: PgTenant
    attempts: int = 0
    refused: list[str] = field(default_factory=list)
    versions_used: set[str] = field(default_factory=set)
    _credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

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


def test_twenty_rotations_under_live_logins_refuse_no_consumer(
    bench: Bench, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant(postgres_server)
    seed(bench, tenant)
    bench.operator.start()
    bench.wait_rotations(1)
    started = time.monotonic()
    with LiveLogins(bench, tenant) as consumers:
        for i in range(ROTATIONS):
            bench.force(f"live-{i}")
            status = bench.wait(
                lambda obj, v=f"live-{i}": (
                    (obj.get("status") or {}).get("lastHandledForceRotate") == v
                    and not (obj.get("status") or {}).get("rotation")
                ),
                timeout=60,
                what=f"rotation {i}",
            )["status"]
            assert status["history"][0]["result"] == "Succeeded", status["history"][0]
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\npostgresRole: {ROTATIONS} rotations in {elapsed:.0f} s under {consumers.attempts} logins "
            f"({consumers.attempts / elapsed:.0f}/s), {len(consumers.refused)} refused"
        )
    assert not consumers.refused, consumers.refused[:5]
    assert len(consumers.versions_used) >= ROTATIONS, "every credential handed to pods was exercised"
    active, password = bench.secret_value("username"), bench.secret_value("password")
    assert active is not None
    assert password is not None
    assert tenant.can_login(active, password)
    retired = next(role for role in tenant.roles if role != active)
    assert tenant.role_attributes(retired) == (False, True), "the previous role is locked, not dropped"


@pytest.mark.parametrize("point", FORWARD_POINTS)
def test_crash_at_every_step_leaves_one_working_credential(
    bench: Bench, postgres_server: PostgresServer, point: str
) -> None:
    tenant = new_tenant(postgres_server)
    seed(bench, tenant)
    bench.operator.start()
    bench.wait_rotations(1)
    first = json.loads(bench.kv_value(1) or "{}")
    bench.operator.stop()

    bench.operator.start(crash_at=point)
    bench.force()
    assert bench.operator.wait_exit(timeout=60) == CRASH_EXIT_CODE, f"never reached {point}"
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
