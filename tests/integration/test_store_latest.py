"""Readers of "latest" only ever see a working credential (issue 9, item 5).

External Secrets, the Vault Secrets Operator and Vault Agent read ``<mount>/data/<path>`` without
a version; AWS readers call ``GetSecretValue`` without a stage, which means ``AWSCURRENT``. A
reader thread polls exactly that while the main thread drives rotations through the Store verbs
the engine uses: successful ones (write_pending, promote, revoke the old), rollbacks after
promotion (mark_failed back onto the old) and rollbacks before promotion. Every value the reader
ever gets must have been current at that moment: promoted (the promote call had started) and not
yet revoked or failed (the revoke / mark_failed call had not returned). A pending value, a failed
one or a revoked one is never seen, and the reader never finds the path empty.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import hvac
import pytest
from pydantic import SecretStr

from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.stores.aws.auth import aws_client
from rotator.stores.aws.secrets_manager import AWSCURRENT, AwsSecretsManagerStore
from rotator.stores.base import Store
from rotator.stores.fake import FakeStore
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv2 import VaultKV2Store

CYCLES = ("ok", "rollback", "ok", "rollback-before-promote", "rollback", "ok", "ok", "rollback")
PAUSE = 0.05
"""Seconds between the driver's calls, so the reader interleaves with every state."""


@dataclass
class Window:
    start: float
    end: float | None = None


def fake_backend() -> tuple[Store, Callable[[], str | None]]:
    store = FakeStore(f"latest/{uuid.uuid4().hex}")
    return store, store.latest_value


def vault_backend(server: OpenBaoServer) -> tuple[Store, Callable[[], str | None]]:
    path = f"latest/{uuid.uuid4().hex}"
    store = VaultKV2Store(vault_client(server.address, server.root_token, 5.0), "secret", path)
    reader = hvac.Client(url=server.address, token=server.root_token, timeout=5)

    def latest() -> str | None:
        try:  # exactly what ESO / VSO / Vault Agent do: GET secret/data/<path>, no version
            answer = reader.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return str(answer["data"]["data"]["value"])

    return store, latest


def aws_backend(server: MotoServer) -> tuple[Store, Callable[[], str | None]]:
    secret_id = f"latest/{uuid.uuid4().hex}"

    def client() -> object:
        return aws_client("us-east-1", server.endpoint_url, "testing", "testing", timeout=5.0)

    store = AwsSecretsManagerStore(client(), secret_id)  # type: ignore[arg-type]
    reader = client()

    def latest() -> str | None:
        # A default GetSecretValue means VersionStage=AWSCURRENT on AWS; named here because
        # moto 5.2.5 answers a stage-less read with a stale version after a stage move.
        answer = reader.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)  # type: ignore[attr-defined]
        return str(answer["SecretString"])

    return store, latest


@pytest.fixture(params=["fake", "vault", "aws"])
def backend(request: pytest.FixtureRequest) -> tuple[Store, Callable[[], str | None]]:
    if request.param == "fake":
        return fake_backend()
    if request.param == "vault":
        return vault_backend(request.getfixturevalue("openbao"))
    return aws_backend(request.getfixturevalue("moto_server"))


def test_latest_is_always_a_current_credential(backend: tuple[Store, Callable[[], str | None]]) -> None:
    store, latest = backend
    windows: dict[str, Window] = {}
    reads: list[tuple[float, float, str | None]] = []
    stop = threading.Event()

    store.ensure_owned("shop/orders-db", adopt=False)
    first_value = f"TOPSECRET-first-{uuid.uuid4().hex}"
    first = store.write_pending(SecretStr(first_value), str(uuid.uuid4()))
    windows[first_value] = Window(time.monotonic())
    store.promote(first.version, None)
    old_version, old_value = first.version, first_value

    def poll() -> None:
        while not stop.is_set():
            started = time.monotonic()
            seen = latest()
            reads.append((started, time.monotonic(), seen))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for n, cycle in enumerate(CYCLES):
            new_value = f"TOPSECRET-{n}-{cycle}-{uuid.uuid4().hex}"
            new = store.write_pending(SecretStr(new_value), str(uuid.uuid4()))
            time.sleep(PAUSE)
            if cycle != "rollback-before-promote":
                windows[new_value] = Window(time.monotonic())
                store.promote(new.version, old_version)
                time.sleep(PAUSE)
            if cycle == "ok":
                store.revoke(old_version)
                windows[old_value].end = time.monotonic()
                old_version, old_value = new.version, new_value
            else:
                store.mark_failed(new.version, old_version)
                if new_value in windows:
                    windows[new_value].end = time.monotonic()
            time.sleep(PAUSE)
    finally:
        stop.set()
        reader.join(timeout=30)

    assert len(reads) > 2 * len(CYCLES), "the reader polled throughout"
    for started, finished, seen in reads:
        assert seen is not None, "the path was never empty for a reader once a credential existed"
        window = windows.get(seen)
        assert window is not None, "a reader saw a value that was never promoted (pending or failed)"
        assert window.start <= finished, "a reader saw a value before its promotion started"
        assert window.end is None or started <= window.end, "a reader saw a revoked or failed value"
    assert latest() == old_value, "after the last rollback readers see the restored credential"
    current = store.current()
    assert current is not None
    assert current.version == old_version
    print(f"{len(reads)} reads of latest, {len({seen for _, _, seen in reads})} distinct values")
