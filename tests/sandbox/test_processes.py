"""The local stack's server processes: each starts, answers, pauses/restarts, and stops by PID.

Servers built here (not the shared session fixtures) are the ones we stop, restart and kill; the
last test checks that none of them left a process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from typing import TypeVar

import boto3
import hvac
import psycopg
import pytest
import requests
from mypy_boto3_secretsmanager import SecretsManagerClient
from psycopg.conninfo import make_conninfo

from rotator.sandbox import consumers
from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.postgres import PostgresServer
from rotator.sandbox.processes import (
    LocalServer,
    PortTaken,
    ServerError,
    free_port,
    pid_alive,
    sandbox_processes,
    tcp_ok,
    wait_pid_gone,
)
from tests.fixtures.servers import report_startup

S = TypeVar("S", bound=LocalServer)

OWN_SERVERS: list[LocalServer] = []
"""Every server this module built itself, for the leak check at the end."""


def _own(server: S) -> S:
    OWN_SERVERS.append(server)
    return server


@pytest.fixture
def own_openbao() -> Iterator[OpenBaoServer]:
    server = _own(OpenBaoServer())
    try:
        yield server.start()
    finally:
        server.close()


# -- OpenBao -------------------------------------------------------------------------------------


def test_openbao_reads_and_writes_kv2(openbao: OpenBaoServer) -> None:
    client = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    assert client.is_authenticated()
    path = f"test/{uuid.uuid4().hex}"
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": "s3cret"}, mount_point="secret")
    read = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"value": "s3cret"}
    assert read["data"]["metadata"]["version"] == 1


def test_openbao_pause_keeps_data_restart_same_port_loses_it(own_openbao: OpenBaoServer) -> None:
    server = own_openbao
    port, token = server.port, server.root_token
    client = hvac.Client(url=server.address, token=token, timeout=1)
    client.secrets.kv.v2.create_or_update_secret(path="kept", secret={"value": "v1"}, mount_point="secret")

    with server.paused(), pytest.raises(requests.exceptions.Timeout):
        client.secrets.kv.v2.read_secret_version(
            path="kept", mount_point="secret", raise_on_deleted_version=True
        )
    read = client.secrets.kv.v2.read_secret_version(
        path="kept", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"]["value"] == "v1", "pause/resume keeps the in-memory data"

    old_pid = server.pid
    assert old_pid is not None
    server.stop()
    assert not pid_alive(old_pid)
    assert not tcp_ok(server.host, port), "nothing listens while stopped"
    with pytest.raises(requests.exceptions.ConnectionError):
        client.secrets.kv.v2.read_secret_version(
            path="kept", mount_point="secret", raise_on_deleted_version=True
        )

    server.start()
    assert server.startup_seconds is not None
    report_startup("openbao (restart)", server.startup_seconds)
    assert (server.port, server.root_token) == (port, token)
    assert server.pid != old_pid
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version(
            path="kept", mount_point="secret", raise_on_deleted_version=True
        )  # dev mode: data gone
    client.secrets.kv.v2.create_or_update_secret(path="again", secret={"value": "v"}, mount_point="secret")


def test_openbao_with_tls_serves_https_signed_by_its_own_ca_and_a_restart_brings_a_new_one() -> None:
    """``tls=True``: the certificate is valid for 127.0.0.1 and chains to ``ca_pem`` only (the
    system's CAs refuse it); a restart, even after a kill that left the old files behind,
    serves a certificate of a new CA; close() stops it by PID and removes its key with the
    work directory."""
    server = _own(OpenBaoServer(tls=True))
    with server:
        assert server.address == f"https://127.0.0.1:{server.port}"
        first = server.ca_pem
        assert first is not None
        assert first.startswith("-----BEGIN CERTIFICATE-----")
        ca = server.workdir / "trusted.pem"
        ca.write_text(first)
        client = hvac.Client(url=server.address, token=server.root_token, verify=str(ca), timeout=5)
        assert client.is_authenticated()
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            hvac.Client(url=server.address, verify=True, timeout=5).sys.read_health_status(method="GET")

        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no clean stop: bao leaves its CA, certificate and key behind
        assert wait_pid_gone(pid, 5)
        assert (server.cert_dir / "vault-ca.pem").read_text() == first
        server.stop()
        server.start()
        assert server.ca_pem is not None
        assert server.ca_pem != first
        with pytest.raises(requests.exceptions.SSLError):
            client.sys.read_health_status(method="GET")  # the old CA vouches for nothing now
        pids = list(server.started_pids)
    assert all(not pid_alive(pid) for pid in pids)
    assert not server.workdir.exists(), "the generated key went with the work directory"


# -- moto ----------------------------------------------------------------------------------------


def _secretsmanager(server: MotoServer) -> SecretsManagerClient:
    return boto3.client(
        "secretsmanager",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _stage_rotation(sm: SecretsManagerClient, name: str) -> tuple[str, str]:
    """Create a secret, add a pending version, move AWSCURRENT to it; return (old, new) ids."""
    created = sm.create_secret(Name=name, SecretString="old-value")
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=name, ClientRequestToken=token, SecretString="new-value", VersionStages=["AWSPENDING"]
    )
    sm.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=created["VersionId"],
    )
    return str(created["VersionId"]), token


def test_moto_creates_and_reads_a_secret(moto_server: MotoServer) -> None:
    sm = _secretsmanager(moto_server)
    name = f"test/{uuid.uuid4().hex}"
    sm.create_secret(Name=name, SecretString="hello")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "hello"


def test_moto_default_read_follows_awscurrent_after_stage_move(moto_server: MotoServer) -> None:
    sm = _secretsmanager(moto_server)
    name = f"test/{uuid.uuid4().hex}"
    old, new = _stage_rotation(sm, name)

    default = sm.get_secret_value(SecretId=name)
    assert (default["VersionId"], default["SecretString"]) == (new, "new-value")
    assert "AWSCURRENT" in default["VersionStages"]
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (previous["VersionId"], previous["SecretString"]) == (old, "old-value")

    # A later plain put moves AWSPREVIOUS from the right version (the internal default followed).
    latest = sm.put_secret_value(SecretId=name, SecretString="third")
    stages = {vid: set(s) for vid, s in sm.describe_secret(SecretId=name)["VersionIdsToStages"].items() if s}
    assert stages[latest["VersionId"]] == {"AWSCURRENT"}
    assert stages[new] == {"AWSPREVIOUS"}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "third"


def test_moto_pause_keeps_state(moto_server: MotoServer) -> None:
    sm = _secretsmanager(moto_server)
    name = f"test/{uuid.uuid4().hex}"
    sm.create_secret(Name=name, SecretString="kept")
    with moto_server.paused():
        assert not _answers_within(moto_server.endpoint_url, 0.5)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "kept"


def _answers_within(url: str, timeout: float) -> bool:
    try:
        requests.get(f"{url}/moto-api/data.json", timeout=timeout)
    except requests.exceptions.RequestException:
        return False
    return True


def test_stock_moto_has_the_defect_we_correct() -> None:
    """If this fails, moto fixed it upstream and ``moto_main.apply_moto_fixes`` can go."""
    server = _own(MotoServer(fixes=False))
    with server:
        sm = _secretsmanager(server)
        _stage_rotation(sm, "defect")
        assert sm.get_secret_value(SecretId="defect")["SecretString"] == "old-value"
        assert (
            sm.get_secret_value(SecretId="defect", VersionStage="AWSCURRENT")["SecretString"] == "new-value"
        )


# -- PostgreSQL ----------------------------------------------------------------------------------


def test_postgres_connects_and_creates_a_role(postgres_server: PostgresServer) -> None:
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    dsn = f"postgresql://{role}:pw-{role}@{postgres_server.host}:{postgres_server.port}/postgres"
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn.replace(f"pw-{role}", "wrong"), connect_timeout=5)


def test_a_sandbox_pod_tells_a_refused_credential_from_no_answer(postgres_server: PostgresServer) -> None:
    """The sandbox's consumer pods count a refusal only when PostgreSQL refuses the credential
    (a wrong password, a locked or dropped role); a server that does not answer (a timeout on a
    loaded machine) is no verdict, so it neither fails the zero-refusal proofs nor marks a pod's
    first login failed."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    host, port = postgres_server.host, postgres_server.port

    def login(user: str, password: str, to_port: int = port) -> bool | None:
        return consumers._login(
            make_conninfo(
                host=host,
                port=str(to_port),
                dbname="postgres",
                user=user,
                password=password,
                connect_timeout=2,
            )
        )

    assert login(role, f"pw-{role}") is True
    assert login(role, "wrong") is False
    assert login(f"{role}_gone", "x") is False
    with psycopg.connect(postgres_server.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"ALTER ROLE {role} NOLOGIN")
    assert login(role, f"pw-{role}") is False, "a locked role is a refusal"
    with psycopg.connect(postgres_server.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"ALTER ROLE {role} LOGIN CONNECTION LIMIT 0")
    assert login(role, f"pw-{role}") is False, "a role held at its connection limit is refused too"
    with psycopg.connect(postgres_server.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
        conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
        try:
            assert login(role, f"pw-{role}") is False, "no CONNECT on the database is a refusal"
        finally:
            conn.execute("GRANT CONNECT ON DATABASE postgres TO PUBLIC")
    assert login(role, f"pw-{role}", free_port()) is None, "nothing listening: no verdict"


def test_postgres_pause_restart_keep_data_and_stop_by_postmaster_pid() -> None:
    server = _own(PostgresServer())
    with server:
        assert server.startup_seconds is not None
        report_startup("postgres (own, incl. initdb)", server.startup_seconds)
        postmaster = server.postmaster_pid
        assert postmaster is not None
        assert postmaster in server.started_pids
        with psycopg.connect(server.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE ROLE kept LOGIN")
        with server.paused(), pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.dsn, connect_timeout=1)
        with psycopg.connect(server.dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.stop()
        assert not pid_alive(postmaster)
        server.start()
        assert server.startup_seconds is not None
        report_startup("postgres (restart)", server.startup_seconds)
        with psycopg.connect(server.dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'kept'").fetchone() == (1,)


def test_missing_postgres_binaries_name_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import rotator.sandbox.postgres as pg

    monkeypatch.setattr("rotator.sandbox.postgres.glob.glob", lambda pattern: [])
    monkeypatch.setattr("rotator.sandbox.postgres.shutil.which", lambda name: None)
    with pytest.raises(pg.ServerError, match="Debian package 'postgresql'"):
        pg.PostgresServer()


# -- process hygiene -----------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    assert not tcp_ok("127.0.0.1", port)


def test_start_refuses_a_port_in_use() -> None:
    """Another server answering on the port would fool the health check: refuse up front."""
    blocker = _own(OpenBaoServer())
    with blocker:
        clash = _own(OpenBaoServer(port=blocker.port))
        with pytest.raises(PortTaken, match="already in use"):  # a ServerError: a new server may be tried
            clash.start()
        assert clash.pid is None
        assert clash.started_pids == []
        clash.close()


def test_server_dying_at_startup_fails_fast_with_its_log() -> None:
    """A port bound but not listening: bao cannot bind and exits; we report its log, quickly."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        clash = _own(OpenBaoServer(port=squatter.getsockname()[1], start_timeout=20))
        began = time.monotonic()
        with pytest.raises(ServerError, match="exited with code") as caught:
            clash.start()
        assert time.monotonic() - began < 10
        assert "address already in use" in str(caught.value)
        assert clash.pid is None
        assert all(not pid_alive(pid) for pid in clash.started_pids)
        clash.close()


def test_no_server_process_survives() -> None:
    """Every server built in this module is stopped: no PID we spawned lives, and no process
    refers to one of our temp dirs (command line, working directory or environment)."""
    # Also build and close one of each here, so the check covers all three kinds even when run alone.
    kinds: tuple[type[LocalServer], ...] = (OpenBaoServer, MotoServer, PostgresServer)
    for kind in kinds:
        server = _own(kind())
        with server:
            report_startup(f"{server.name} (own)", server.startup_seconds)
    assert OWN_SERVERS
    for server in OWN_SERVERS:
        server.close()  # idempotent; no-op for the already closed
    pids = [pid for server in OWN_SERVERS for pid in server.started_pids]
    assert len(pids) >= len(kinds)  # at least this test's own (others of the module may run on other workers)
    alive = [pid for pid in pids if pid_alive(pid)]
    assert alive == []
    leftovers = list(sandbox_processes([server.workdir for server in OWN_SERVERS]))
    assert leftovers == []
    assert all(not server.workdir.exists() for server in OWN_SERVERS)
