"""Real HTTP requests per rotation against the real stores (issue 11), counted on the wire.

The Store verbs are called in the order the engine calls them in one rotation
(tests/engine/test_request_counts.py pins that order: start = ensure_owned + current, generate =
find_by_rotation + write_pending, dual = promote, sync = read_value(new) (the old value comes
from the Secret), revoke = read_value(new) + revoke(old)), each reconcile on a new store object
as the operator builds them, sharing the session's ``KV2Cache`` as ``StoreOpener`` shares it.
The figure line breaks the count down by step and verb.
Counted are the HTTP responses the client's ``requests.Session`` (Vault) or botocore's
``before-send`` hook (AWS) sees: retries included, nothing estimated.

Vault: 10 requests per rotation (it was 13; 35 before the session cache), not the issue's goal
of 8, and no lower without giving up crash safety or the freshness that guards destruction:

- 6 writes are the crash-safe protocol itself (kv2 module docstring): stage the pending value
  (check-and-set on the staging path), publish it (check-and-set on the published path), merge
  the pointers, destroy the staged copy, destroy the old version, drop the previous pointer.
  Fewer means either a pending value visible to readers of latest, or a copy of a secret left
  behind, or pointers that lag the data.
- 1 value read: the revoke step's, on purpose (the new credential must still be in the store
  before the old one is destroyed). The value ``write_pending`` staged is handed to ``promote``
  and from there to the sync step's read (``KV2Cache.handover``, taken out by that read): no
  read-back of what this process wrote a moment ago.
- 3 metadata reads are the freshness points: ensure_owned at the rotation's start (ownership,
  pointers), the re-read after staging (a foreign write took the number we promised; it is also
  the view ``promote`` publishes from, with check-and-set), and revoke's, which destroys
  versions: it never acts on a view that may predate someone else's write.
Tags of versions (rotation id, version id; immutable per KV version) and the staging path's
metadata (nobody else writes it) are carried across reconciles. The first rotation on a new
session also reads the mount's configuration once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import hvac
import pytest
import requests
from pydantic import SecretStr

from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.stores.aws.auth import aws_client
from rotator.stores.aws.secrets_manager import AwsSecretsManagerStore, SMCache
from rotator.stores.base import Store
from rotator.stores.errors import StoreConflict, StoreRefused, StoreVersionNotFound
from rotator.stores.vault.kv2 import KV2Cache, VaultKV2Store
from tests.fixtures.figures import figure

OWNER = "shop/orders-db"
VAULT_PER_ROTATION = 10
AWS_PER_ROTATION = 13


class _Steps:
    """Which engine step (and Store verb) the requests being counted belong to."""

    def __init__(self) -> None:
        self.now = "-"
        self.sent: Counter[tuple[str, str]] = Counter()

    def count(self, request: str) -> None:
        self.sent[(self.now, request)] += 1

    def breakdown(self) -> str:
        lines: dict[str, list[str]] = {}
        for (step, request), n in self.sent.items():
            lines.setdefault(step, []).append(f"{request}: {n}")
        return "\n".join(f"  {step:>26}: {', '.join(found)}" for step, found in lines.items())


def _rotation(open_store: Callable[[], Store], old: str | None, steps: _Steps | None = None) -> str:
    """One rotation as the engine runs it, one store object per reconcile; the new version."""
    at = steps or _Steps()
    start = open_store()
    at.now = "start ensure_owned"
    start.ensure_owned(OWNER, adopt=True)
    at.now = "start current"
    current = start.current()
    assert (current.version if current else None) == old
    rotation_id = uuid.uuid4().hex
    generate = open_store()
    at.now = "generate find_by_rotation"
    assert generate.find_by_rotation(rotation_id) is None
    at.now = "generate write_pending"
    new = generate.write_pending(SecretStr(f"value-{rotation_id}"), rotation_id).version
    at.now = "dual promote"
    open_store().promote(new, old)
    at.now = "sync read_value"
    assert open_store().read_value(new).get_secret_value() == f"value-{rotation_id}"
    revoke = open_store()
    at.now = "revoke read_value"
    revoke.read_value(new)
    at.now = "revoke revoke"
    if old is not None:
        revoke.revoke(old)
    at.now = "-"
    return new


class _VaultWire:
    def __init__(self, server: OpenBaoServer) -> None:
        self.sent: Counter[str] = Counter()
        self.steps = _Steps()
        session = requests.Session()
        session.hooks["response"].append(self._count)
        self.client = hvac.Client(url=server.address, token=server.root_token, timeout=5, session=session)
        self.admin = hvac.Client(url=server.address, token=server.root_token, timeout=5)
        self.cache = KV2Cache()
        self.path = f"test/{uuid.uuid4().hex}"

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = urlparse(request.url or "").path
        label = f"{request.method} {path.split('/')[3] if path.count('/') > 3 else path}"
        self.sent[label] += 1
        self.steps.count(label)

    def store(self) -> VaultKV2Store:
        return VaultKV2Store(self.client, "secret", self.path, cache=self.cache)


def test_vault_rotation_costs_10_http_requests(openbao: OpenBaoServer) -> None:
    wire = _VaultWire(openbao)
    first = _rotation(wire.store, None)  # claims the path, checks the mount
    second = _rotation(wire.store, first)  # the first with an old version: reads the mount config
    wire.sent.clear()
    wire.steps.sent.clear()
    _rotation(wire.store, second, wire.steps)
    figure(
        f"vault HTTP on the wire per rotation: {wire.sent.total()} {dict(wire.sent)}, by step:\n"
        + wire.steps.breakdown()
    )
    assert dict(wire.sent) == {
        "GET metadata": 3,  # start, after staging (promote publishes from it), revoke
        "GET data": 1,  # revoke (the staged value is handed to promote and on to sync)
        "POST data": 2,  # stage, publish (both check-and-set)
        "PATCH metadata": 2,  # pointers at promote, previous dropped at revoke
        "POST destroy": 2,  # the staged copy, the old version
    }
    assert wire.sent.total() == VAULT_PER_ROTATION


def test_vault_carried_view_still_meets_foreign_writes(openbao: OpenBaoServer) -> None:
    """The session's view is only a guess for lookups: what writes or destroys reads afresh."""
    wire = _VaultWire(openbao)
    kv = wire.admin.secrets.kv.v2
    first = _rotation(wire.store, None)
    second = _rotation(wire.store, first)
    # A foreign write to the published path after the view was taken: the id promised from the
    # view is taken, and the re-read after staging says so.
    kv.create_or_update_secret(path=wire.path, secret={"value": "foreign"}, mount_point="secret")
    with pytest.raises(StoreConflict):
        wire.store().write_pending(SecretStr("v"), uuid.uuid4().hex)
    # Re-observed, the next attempt stages fine; someone then points current at the old version
    # by hand: revoke reads afresh and refuses to destroy what is now current.
    rotation_id = uuid.uuid4().hex
    store = wire.store()
    store.ensure_owned(OWNER, adopt=True)
    third = store.write_pending(SecretStr("v3"), rotation_id).version
    wire.store().promote(third, second)
    custom = kv.read_secret_metadata(path=wire.path, mount_point="secret")["data"]["custom_metadata"]
    custom["rotator.dev/current-version"] = second
    kv.update_metadata(path=wire.path, custom_metadata=custom, mount_point="secret")
    with pytest.raises(StoreRefused):
        wire.store().revoke(second)
    # A version destroyed by someone else behind the view: read_value looks again and says so.
    kv.destroy_secret_versions(path=wire.path, versions=[int(third)], mount_point="secret")
    with pytest.raises(StoreVersionNotFound):
        wire.store().read_value(third)


def test_vault_handed_value_serves_one_read_only(openbao: OpenBaoServer) -> None:
    """The value write_pending staged reaches promote and the next read without a read-back;
    the read after that (the revoke step's) asks Vault, and finds a version destroyed since."""
    wire = _VaultWire(openbao)
    first = _rotation(wire.store, None)
    rotation_id = uuid.uuid4().hex
    new = wire.store().write_pending(SecretStr("handed-value"), rotation_id).version
    wire.store().promote(new, first)
    wire.sent.clear()
    assert wire.store().read_value(new).get_secret_value() == "handed-value"
    assert wire.sent.total() == 0
    kv = wire.admin.secrets.kv.v2
    kv.destroy_secret_versions(path=wire.path, versions=[int(new)], mount_point="secret")
    with pytest.raises(StoreVersionNotFound):
        wire.store().read_value(new)
    assert wire.sent["GET data"] + wire.sent["GET metadata"] >= 1


def test_aws_rotation_http_requests(moto_server: MotoServer) -> None:
    """Secrets Manager on moto, counted the same way: 13 (it was 26). No check-and-set there:
    write_pending lists the versions (deprecated ones too) before and after its write, so those
    two ListSecretVersionIds stay; every other verb judges by labels and tags, which one
    DescribeSecret gives (VersionIdsToStages). A verb starts from the look the previous verb of
    the same store object took a moment before (ensure_owned -> current, find_by_rotation ->
    write_pending, read_value -> revoke); promote knows where AWS put AWSPREVIOUS without a
    re-read; the value written is handed to the sync step's read (``SMCache.handover``). The
    label moves name the version they take a label from, so AWS itself refuses one that a
    foreign move made wrong."""
    client = aws_client("us-east-1", moto_server.endpoint_url, "testing", "testing", timeout=5.0)
    sent: Counter[str] = Counter()
    steps = _Steps()

    def count(request: Any, **kwargs: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        text = target.decode() if isinstance(target, bytes) else str(target)
        sent[text.split(".")[-1]] += 1
        steps.count(text.split(".")[-1])

    client.meta.events.register("before-send.secrets-manager", count)
    secret_id = f"test/{uuid.uuid4().hex}"
    cache = SMCache()

    def store() -> AwsSecretsManagerStore:
        return AwsSecretsManagerStore(client, secret_id, cache=cache)

    first = _rotation(store, None)
    second = _rotation(store, first)
    sent.clear()
    steps.sent.clear()
    _rotation(store, second, steps)
    figure(f"aws HTTP on the wire per rotation: {sent.total()} {dict(sent)}, by step:\n" + steps.breakdown())
    assert dict(sent) == {
        "DescribeSecret": 4,  # start, generate, promote, the revoke step (read_value, then revoke)
        "ListSecretVersionIds": 3,  # current (creation date), write_pending's before and after
        "UpdateSecretVersionStage": 3,  # AWSCURRENT to the new, AWSPENDING off it, the old stripped
        "GetSecretValue": 1,  # revoke (sync's is handed over)
        "TagResource": 1,  # the new id remembered before the write
        "PutSecretValue": 1,
    }
    assert sent.total() == AWS_PER_ROTATION
