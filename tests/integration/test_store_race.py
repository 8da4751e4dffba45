"""Two policies racing for one new store path: exactly one owns it (issue 7, item 3).

Each round builds two store objects on the same new path (separate clients, as two policies would
have), starts two threads at a ``threading.Barrier`` and lets each ``ensure_owned`` for its own
owner, then write and promote its own value. Exactly one thread may get past ``ensure_owned``;
the other must get StoreOwnershipError naming the winner, and only the winner's value may ever be
on the path. "Natural" rounds only align the start; "staged" rounds also hold both threads just
before the claim, so both have seen the path unowned and both really do try to claim it at once.
Against the fake, real OpenBao (the claim is a check-and-set-0 write) and moto (CreateSecret is
atomic by name).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hvac
import pytest
from pydantic import SecretStr

from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.stores.aws.auth import aws_client
from rotator.stores.aws.secrets_manager import AWSCURRENT, AwsSecretsManagerStore
from rotator.stores.base import Store
from rotator.stores.errors import StoreOwnershipError
from rotator.stores.fake import FakeStore
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv2 import VaultKV2Store

ROUNDS = 20
OWNERS = ("team-a/orders-db", "team-b/orders-db")


@dataclass
class Pair:
    stores: tuple[Store, Store]
    values_on_path: Callable[[], list[str]]
    """Every value the path holds in any live version (the loser's must never be there)."""
    latest: Callable[[], str | None]
    """What a reader of "latest" gets."""
    stage: Callable[[threading.Barrier], None]
    """Hold both threads just before their claim (staged rounds)."""
    claims: list[str] = field(default_factory=list)


def _barrier_wait(barrier: threading.Barrier) -> None:
    # Broken: the other thread saw the path owned already and never reached its claim.
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=2.0)


def fake_pair() -> Pair:
    store = FakeStore(f"race/{uuid.uuid4().hex}")  # one path: two policies share the same store

    def stage(barrier: threading.Barrier) -> None:
        def hook() -> None:
            store.before_next_claim(hook)  # re-armed for the other thread
            _barrier_wait(barrier)

        store.before_next_claim(hook)

    return Pair(
        (store, store),
        lambda: [v.value for v in store.versions.values() if v.value is not None],
        store.latest_value,
        stage,
    )


def vault_pair(server: OpenBaoServer) -> Pair:
    path = f"race/{uuid.uuid4().hex}"
    stores = tuple(
        VaultKV2Store(vault_client(server.address, server.root_token, 5.0), "secret", path) for _ in OWNERS
    )
    admin = hvac.Client(url=server.address, token=server.root_token, timeout=5).secrets.kv.v2
    pair = Pair((stores[0], stores[1]), lambda: [], lambda: None, lambda barrier: None)

    def values(where: str) -> Iterator[str]:
        try:
            versions = admin.read_secret_metadata(path=where, mount_point="secret")["data"]["versions"]
        except hvac.exceptions.InvalidPath:
            return
        for number, info in versions.items():
            if info["destroyed"] or info["deletion_time"]:
                continue
            data = admin.read_secret_version(
                path=where, version=int(number), mount_point="secret", raise_on_deleted_version=True
            )["data"]["data"]
            if "value" in data:
                yield data["value"]

    def latest() -> str | None:
        try:
            data = admin.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return str(data["data"]["data"]["value"])

    def stage(barrier: threading.Barrier) -> None:
        for store in stores:
            original = store._claim

            def held(owner: str, original: Callable[[str], Any] = original) -> Any:
                _barrier_wait(barrier)
                return original(owner)

            store._claim = held  # type: ignore[method-assign]

    for store in stores:
        original_claim = store._claim

        def counted(owner: str, original: Callable[[str], Any] = original_claim) -> Any:
            pair.claims.append(owner)
            return original(owner)

        store._claim = counted  # type: ignore[method-assign]

    pair.values_on_path = lambda: [*values(path), *values(f"{path}.rotator-pending")]
    pair.latest = latest
    pair.stage = stage
    return pair


def aws_pair(server: MotoServer) -> Pair:
    secret_id = f"race/{uuid.uuid4().hex}"

    def client() -> Any:
        return aws_client("us-east-1", server.endpoint_url, "testing", "testing", timeout=5.0)

    stores = tuple(AwsSecretsManagerStore(client(), secret_id) for _ in OWNERS)
    admin = client()
    pair = Pair((stores[0], stores[1]), lambda: [], lambda: None, lambda barrier: None)

    def values() -> list[str]:
        listed = admin.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
        return [
            admin.get_secret_value(SecretId=secret_id, VersionId=v["VersionId"])["SecretString"]
            for v in listed
            if v.get("VersionStages")
        ]

    def latest() -> str | None:
        answer = admin.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)
        return str(answer["SecretString"])

    def wrap_create(store: AwsSecretsManagerStore, before: Callable[[], None]) -> None:
        original = store._client.create_secret

        def create(**kwargs: Any) -> Any:
            before()
            return original(**kwargs)

        setattr(store._client, "create_secret", create)  # noqa: B010 (test only)

    for store, owner in zip(stores, OWNERS, strict=True):
        wrap_create(store, lambda owner=owner: pair.claims.append(owner))  # type: ignore[misc]

    def stage(barrier: threading.Barrier) -> None:
        for store in stores:
            wrap_create(store, lambda: _barrier_wait(barrier))

    pair.values_on_path = values
    pair.latest = latest
    pair.stage = stage
    return pair


@pytest.fixture(params=["fake", "vault", "aws"])
def make_pair(request: pytest.FixtureRequest) -> Callable[[], Pair]:
    if request.param == "fake":
        return fake_pair
    if request.param == "vault":
        server: OpenBaoServer = request.getfixturevalue("openbao")
        return lambda: vault_pair(server)
    moto: MotoServer = request.getfixturevalue("moto_server")
    return lambda: aws_pair(moto)


def race_once(pair: Pair, *, staged: bool) -> dict[str, Any]:
    start = threading.Barrier(2)
    if staged:
        pair.stage(threading.Barrier(2))
    outcomes: dict[str, Any] = {}
    secrets = {owner: f"TOPSECRET-{owner}-{uuid.uuid4().hex}" for owner in OWNERS}

    def policy(store: Store, owner: str) -> None:
        start.wait(timeout=5.0)
        try:
            store.ensure_owned(owner, adopt=False)
            written = store.write_pending(SecretStr(secrets[owner]), str(uuid.uuid4()))
            store.promote(written.version, None)
            outcomes[owner] = "owner"
        except StoreOwnershipError as exc:
            outcomes[owner] = exc
        except Exception as exc:  # reported by the assertions below
            outcomes[owner] = exc

    threads = [
        threading.Thread(target=policy, args=(store, owner))
        for store, owner in zip(pair.stores, OWNERS, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30.0)
    winners = [owner for owner, outcome in outcomes.items() if outcome == "owner"]
    assert len(winners) == 1, f"exactly one owner, got {outcomes}"
    (winner,) = winners
    (loser,) = [owner for owner in OWNERS if owner != winner]
    refusal = outcomes[loser]
    assert isinstance(refusal, StoreOwnershipError), f"the other is refused, got {refusal!r}"
    assert refusal.found_owner == winner
    assert pair.values_on_path() == [secrets[winner]], "only the winner's value is on the path"
    assert pair.latest() == secrets[winner]
    return outcomes


@pytest.mark.parametrize("staged", [False, True], ids=["natural", "staged"])
def test_two_policies_racing_for_a_new_path_yield_exactly_one_owner(
    make_pair: Callable[[], Pair], staged: bool
) -> None:
    both_claimed, tracked = 0, True
    for _ in range(ROUNDS):
        pair = make_pair()
        tracked = not isinstance(pair.stores[0], FakeStore)  # the fake's claim is not observable
        race_once(pair, staged=staged)
        both_claimed += len(set(pair.claims)) == 2
    if tracked:
        print(f"rounds where both policies tried to claim at once: {both_claimed}/{ROUNDS}")
        if staged:
            assert both_claimed == ROUNDS, "staged rounds: both policies tried to claim every time"


def test_fake_claim_hook_stages_a_claim_in_between() -> None:
    store = FakeStore()
    store.before_next_claim(lambda: store.ensure_owned("other/policy", adopt=False))
    with pytest.raises(StoreOwnershipError, match="other/policy"):
        store.ensure_owned("shop/orders-db", adopt=False)
    assert store.tags == {"managed-by": "rotator", "rotator.dev/owner": "other/policy"}


def test_vault_claim_lost_between_read_and_claim_is_refused(openbao: OpenBaoServer) -> None:
    """The other policy claims after our ownership read saw the path free: our cas=0 claim fails."""
    pair = vault_pair(openbao)
    ours, theirs = pair.stores
    assert isinstance(ours, VaultKV2Store)
    original = ours._claim

    def late(owner: str) -> str | None:
        theirs.ensure_owned(OWNERS[1], adopt=False)
        return original(owner)

    ours._claim = late  # type: ignore[method-assign]
    with pytest.raises(StoreOwnershipError, match=OWNERS[1]):
        ours.ensure_owned(OWNERS[0], adopt=False)
    assert theirs.ensure_owned(OWNERS[1], adopt=False) is True
