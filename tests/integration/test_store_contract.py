"""One contract for every Store: the in-memory fake, Vault KV v2 on a real OpenBao and AWS Secrets
Manager on the real moto server (STYLE 7).

Each test runs against every backend through a small harness that knows how to play the parts
the Store protocol does not have: a foreign writer, a pre-existing value, an outage. Where a
backend's versioning genuinely differs, the harness says so (``numbered_versions``,
``exact_created_at``, ``observe_operations``) instead of skipping the case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import botocore.exceptions
import hvac
import hvac.exceptions
import pytest
import requests
from pydantic import SecretStr

from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.stores.aws.auth import aws_client
from rotator.stores.aws.secrets_manager import AwsSecretsManagerStore
from rotator.stores.base import OWNER, Store, StoredVersion, VersionState
from rotator.stores.errors import (
    StoreConflict,
    StoreError,
    StoreOwnershipError,
    StoreRefused,
    StoreUnavailable,
    StoreVersionNotFound,
)
from rotator.stores.fake import FakeStore
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv2 import VaultKV2Store

OWNER_ID = "shop/orders-db"
SECRET_MARK = "TOPSECRET"
"""Every value written in this suite contains this, so a leak is easy to find."""

Requests = list[tuple[str, str]]


def value(label: str = "") -> SecretStr:
    return SecretStr(f"{SECRET_MARK}-{label}-{uuid.uuid4().hex}")


class Backend(Protocol):
    requests: Requests
    numbered_versions: bool
    """Versions are "1", "2", ... in write order (Vault KV v2, fake); AWS uses the rotation id."""
    exact_created_at: bool
    """The store reports a version's creation time. moto 5.2.5's ListSecretVersionIds answers
    the listing time as CreatedDate (real AWS answers the creation time), so a version's
    created_at differs between two reads there."""
    observe_operations: tuple[str, ...]
    """Metric operation names of the reads ``current()`` starts with."""
    conflict_at_promote: bool
    """A foreign write racing the pending one is met by ``promote`` (StoreRefused: the engine
    rolls back) instead of ``write_pending`` (StoreConflict: the engine retries). Vault KV v2:
    the publish is itself a check-and-set on the version number the pending one was promised,
    so write_pending does not read the path again to find out earlier (issue 11's request
    budget). Both are equally safe: nothing pending reaches readers of latest, the foreign
    version is never destroyed, and no staged copy is left once the rotation is over."""

    def make(self) -> Store: ...
    def seed(self, store: Store, raw: str) -> str: ...
    def race_next_write(self, store: Store, raw: str) -> None: ...
    def lose_next_write_answer(self, store: Store) -> None: ...
    def version_count(self, store: Store) -> int: ...
    def tag(self, store: Store, tags: dict[str, str]) -> None: ...
    def unavailable(self, store: Store) -> contextlib.AbstractContextManager[Store]: ...


class FakeBackend:
    numbered_versions = True
    conflict_at_promote = False
    exact_created_at = True
    observe_operations = ("current",)

    def __init__(self) -> None:
        self.requests: Requests = []

    def make(self) -> Store:
        return FakeStore(
            f"test/{uuid.uuid4().hex}", on_request=lambda op, res: self.requests.append((op, res))
        )

    @staticmethod
    def _fake(store: Store) -> FakeStore:
        assert isinstance(store, FakeStore)
        return store

    def seed(self, store: Store, raw: str) -> str:
        return self._fake(store).seed(raw)

    def race_next_write(self, store: Store, raw: str) -> None:
        fake = self._fake(store)

        def race() -> None:
            fake.foreign_write(raw)

        fake.before_next_write(race)

    def lose_next_write_answer(self, store: Store) -> None:
        fake = self._fake(store)
        original = fake.write_pending

        def lossy(secret: SecretStr, rotation_id: str) -> StoredVersion:
            del fake.write_pending  # back to the class's method
            original(secret, rotation_id)
            raise StoreUnavailable("answer lost (injected)")

        setattr(fake, "write_pending", lossy)  # noqa: B010 (instance override, test only)

    def version_count(self, store: Store) -> int:
        return len(self._fake(store).versions)

    def tag(self, store: Store, tags: dict[str, str]) -> None:
        fake = self._fake(store)
        fake.tags = {**(fake.tags or {}), **tags}

    @contextlib.contextmanager
    def unavailable(self, store: Store) -> Iterator[Store]:
        fake = self._fake(store)
        fake.available = False
        try:
            yield fake
        finally:
            fake.available = True


class VaultBackend:
    MOUNT = "secret"
    numbered_versions = True
    conflict_at_promote = True
    exact_created_at = True
    observe_operations = ("read_metadata",)

    def __init__(self, server: OpenBaoServer) -> None:
        self.server = server
        self.requests: Requests = []
        self.admin = hvac.Client(url=server.address, token=server.root_token, timeout=5)

    def make(self, timeout: float = 5.0) -> Store:
        client = vault_client(self.server.address, self.server.root_token, timeout)
        return VaultKV2Store(
            client,
            self.MOUNT,
            f"test/{uuid.uuid4().hex}",
            on_request=lambda op, res: self.requests.append((op, res)),
        )

    @staticmethod
    def _vault(store: Store) -> VaultKV2Store:
        assert isinstance(store, VaultKV2Store)
        return store

    def _foreign_write(self, path: str, raw: str) -> str:
        kv = self.admin.secrets.kv.v2
        response = kv.create_or_update_secret(path=path, secret={"value": raw}, mount_point=self.MOUNT)
        return str(response["data"]["version"])

    def seed(self, store: Store, raw: str) -> str:
        return self._foreign_write(self._vault(store).path, raw)

    def _wrap_write(self, store: Store, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        api = self._vault(store)._api
        api.write_data = wrapper(api.write_data)  # type: ignore[method-assign]

    def race_next_write(self, store: Store, raw: str) -> None:
        path = self._vault(store).path
        api = self._vault(store)._api

        def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
            def racing(*args: Any) -> Any:
                api.write_data = original  # type: ignore[method-assign]
                self._foreign_write(path, raw)
                return original(*args)

            return racing

        self._wrap_write(store, wrapper)

    def lose_next_write_answer(self, store: Store) -> None:
        api = self._vault(store)._api

        def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
            def lossy(*args: Any) -> Any:
                api.write_data = original  # type: ignore[method-assign]
                original(*args)
                raise requests.exceptions.ConnectionError("answer lost (injected)")

            return lossy

        self._wrap_write(store, wrapper)

    def _alive(self, path: str) -> list[int]:
        kv = self.admin.secrets.kv.v2
        try:
            versions = kv.read_secret_metadata(path=path, mount_point=self.MOUNT)["data"]["versions"]
        except hvac.exceptions.InvalidPath:
            return []
        return [int(n) for n, v in versions.items() if not v["destroyed"] and not v["deletion_time"]]

    def _data(self, path: str, version: int) -> dict[str, Any]:
        kv = self.admin.secrets.kv.v2
        response = kv.read_secret_version(
            path=path, version=version, mount_point=self.MOUNT, raise_on_deleted_version=True
        )
        return dict(response["data"]["data"])

    def version_count(self, store: Store) -> int:
        """Live values: published versions plus pending ones on the staging path (not the claim)."""
        vault = self._vault(store)
        staged = [n for n in self._alive(vault.staging_path) if "value" in self._data(vault.staging_path, n)]
        return len(self._alive(vault.path)) + len(staged)

    def tag(self, store: Store, tags: dict[str, str]) -> None:
        self.admin.secrets.kv.v2.update_metadata(
            path=self._vault(store).path, custom_metadata=tags, mount_point=self.MOUNT
        )

    @contextlib.contextmanager
    def unavailable(self, store: Store) -> Iterator[Store]:
        # Same path, a client with a short timeout, and the server frozen (SIGSTOP): data is kept.
        short = VaultKV2Store(
            vault_client(self.server.address, self.server.root_token, 0.3),
            self.MOUNT,
            self._vault(store).path,
            on_request=lambda op, res: self.requests.append((op, res)),
        )
        with self.server.paused():
            yield short


class AwsBackend:
    """AWS Secrets Manager on moto: a fresh secret id per store.

    A foreign writer is ``PutSecretValue`` without stages (the SDK default: it becomes
    AWSCURRENT). ``version_count`` counts the versions that still carry a staging label: Secrets
    Manager cannot delete one version, a version without labels is deprecated (revoked, failed
    or abandoned after a lost race) and garbage-collected by AWS.
    """

    numbered_versions = False
    conflict_at_promote = False
    exact_created_at = False
    observe_operations = ("list_versions", "describe")

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.requests: Requests = []
        self.admin = aws_client("us-east-1", server.endpoint_url, "testing", "testing", timeout=5.0)

    def _make(self, secret_id: str, timeout: float) -> AwsSecretsManagerStore:
        client = aws_client("us-east-1", self.server.endpoint_url, "testing", "testing", timeout=timeout)
        return AwsSecretsManagerStore(
            client, secret_id, on_request=lambda op, res: self.requests.append((op, res))
        )

    def make(self, timeout: float = 5.0) -> Store:
        return self._make(f"test/{uuid.uuid4().hex}", timeout)

    @staticmethod
    def _aws(store: Store) -> AwsSecretsManagerStore:
        assert isinstance(store, AwsSecretsManagerStore)
        return store

    def _foreign_write(self, secret_id: str, raw: str) -> str:
        response = self.admin.put_secret_value(SecretId=secret_id, SecretString=raw)
        return str(response["VersionId"])

    def seed(self, store: Store, raw: str) -> str:
        response = self.admin.create_secret(Name=self._aws(store).secret_id, SecretString=raw)
        return str(response["VersionId"])

    def _wrap_put(self, store: Store, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        client = self._aws(store)._client
        setattr(client, "put_secret_value", wrapper(client.put_secret_value))  # noqa: B010 (test only)

    def race_next_write(self, store: Store, raw: str) -> None:
        aws = self._aws(store)
        client = aws._client

        def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
            def racing(**kwargs: Any) -> Any:
                setattr(client, "put_secret_value", original)  # noqa: B010
                self._foreign_write(aws.secret_id, raw)
                return original(**kwargs)

            return racing

        self._wrap_put(store, wrapper)

    def lose_next_write_answer(self, store: Store) -> None:
        client = self._aws(store)._client

        def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
            def lossy(**kwargs: Any) -> Any:
                setattr(client, "put_secret_value", original)  # noqa: B010
                original(**kwargs)
                raise botocore.exceptions.EndpointConnectionError(endpoint_url="answer lost (injected)")

            return lossy

        self._wrap_put(store, wrapper)

    def version_count(self, store: Store) -> int:
        response = self.admin.list_secret_version_ids(
            SecretId=self._aws(store).secret_id, IncludeDeprecated=True
        )
        return sum(1 for v in response["Versions"] if v.get("VersionStages"))

    def tag(self, store: Store, tags: dict[str, str]) -> None:
        self.admin.tag_resource(
            SecretId=self._aws(store).secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )

    @contextlib.contextmanager
    def unavailable(self, store: Store) -> Iterator[Store]:
        # Same secret, a client with a short timeout, and moto frozen (SIGSTOP): data is kept.
        short = self._make(self._aws(store).secret_id, 0.3)
        with self.server.paused():
            yield short


@pytest.fixture(params=["fake", "vault", "aws"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return FakeBackend()
    if request.param == "aws":
        moto: MotoServer = request.getfixturevalue("moto_server")
        return AwsBackend(moto)
    server: OpenBaoServer = request.getfixturevalue("openbao")
    return VaultBackend(server)


def comparable(version: StoredVersion | None, backend: Backend) -> StoredVersion | None:
    """``version`` as far as the backend reports it exactly (see ``Backend.exact_created_at``)."""
    if version is None or backend.exact_created_at:
        return version
    return dataclasses.replace(version, created_at=None)


def rotate(store: Store, old: str | None, label: str) -> tuple[StoredVersion, SecretStr, str]:
    """Write and promote one rotation; returns (new version, its value, rotation id)."""
    rotation_id = str(uuid.uuid4())
    secret = value(label)
    written = store.write_pending(secret, rotation_id)
    store.promote(written.version, old)
    return written, secret, rotation_id


def assert_no_secret(exc: BaseException) -> None:
    seen: BaseException | None = exc
    while seen is not None:
        assert SECRET_MARK not in str(seen)
        assert SECRET_MARK not in repr(seen)
        seen = seen.__cause__ or seen.__context__


# -- the contract --------------------------------------------------------------------------------


def test_fresh_path_write_promote_read(backend: Backend) -> None:
    store = backend.make()
    assert store.ensure_owned(OWNER_ID, adopt=False) is False
    assert store.ensure_owned(OWNER_ID, adopt=False) is True, "tagged on first sight"
    assert store.current() is None

    secret, rotation_id = value("first"), str(uuid.uuid4())
    pending = store.write_pending(secret, rotation_id)
    assert (pending.rotation_id, pending.state) == (rotation_id, VersionState.PENDING)
    assert pending.created_at is not None
    assert comparable(store.find_by_rotation(rotation_id), backend) == comparable(pending, backend)
    assert store.current() is None, "pending is not current"

    store.promote(pending.version, None)
    store.promote(pending.version, None)  # idempotent
    current = store.current()
    assert current is not None
    assert (current.version, current.rotation_id, current.state) == (
        pending.version,
        rotation_id,
        VersionState.CURRENT,
    )
    assert store.read_value(current.version).get_secret_value() == secret.get_secret_value()

    second, second_value, _ = rotate(store, current.version, "second")
    now = store.current()
    assert now is not None
    assert now.version == second.version
    assert store.read_value(second.version).get_secret_value() == second_value.get_secret_value()
    previous = store.find_by_rotation(rotation_id)
    assert previous is not None
    assert previous.state == VersionState.PREVIOUS


def test_write_pending_is_idempotent_by_rotation_id(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    rotation_id = str(uuid.uuid4())
    first = store.write_pending(value("a"), rotation_id)
    again = store.write_pending(value("b"), rotation_id)  # a retry never writes a second value
    assert again.version == first.version
    assert backend.version_count(store) == 1
    assert store.read_value(first.version).get_secret_value().startswith(f"{SECRET_MARK}-a-")


def test_write_pending_after_a_lost_answer_writes_once(backend: Backend) -> None:
    """The write landed but its answer was lost; the retry finds it instead of writing again."""
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    rotation_id = str(uuid.uuid4())
    backend.lose_next_write_answer(store)
    written: StoredVersion | None = None
    for _ in range(3):  # the engine's retry
        with contextlib.suppress(StoreUnavailable):
            written = store.write_pending(value("x"), rotation_id)
            break
    assert written is not None
    assert written.rotation_id == rotation_id
    assert backend.version_count(store) == 1


def test_cas_conflict_with_a_foreign_writer(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    rotation_id = str(uuid.uuid4())
    backend.race_next_write(store, f"{SECRET_MARK}-foreign")
    caught: pytest.ExceptionInfo[StoreError]
    if backend.conflict_at_promote:
        pending = store.write_pending(value("mine"), rotation_id)
        with pytest.raises(StoreRefused) as caught:
            store.promote(pending.version, None)
    else:
        with pytest.raises(StoreConflict) as caught:
            store.write_pending(value("mine"), rotation_id)
    assert_no_secret(caught.value)
    assert backend.version_count(store) == 1, "only the foreign write landed, nothing of ours is left"
    assert store.find_by_rotation(rotation_id) is None

    # Re-observed, the next attempt checks-and-sets against the new latest and lands.
    written = store.write_pending(value("mine"), rotation_id)
    assert written.rotation_id == rotation_id
    assert written.state == VersionState.PENDING
    if backend.numbered_versions:
        assert written.version == "2"
    else:  # AWS: the rotation id is the ClientRequestToken, hence the VersionId
        assert written.version == rotation_id
    assert backend.version_count(store) == 2


def test_untagged_existing_path_is_refused_then_adopted(backend: Backend) -> None:
    store = backend.make()
    legacy = f"{SECRET_MARK}-legacy"
    seeded = backend.seed(store, legacy)
    with pytest.raises(StoreOwnershipError) as caught:
        store.ensure_owned(OWNER_ID, adopt=False)
    message = str(caught.value)
    assert getattr(store, "path", "") in message
    assert "no rotator owner tag" in message
    assert_no_secret(caught.value)

    assert store.ensure_owned(OWNER_ID, adopt=True) is True
    assert store.ensure_owned(OWNER_ID, adopt=False) is True, "adopted = tagged for us"
    current = store.current()
    assert current is not None
    assert (current.version, current.rotation_id, current.state) == (seeded, None, VersionState.CURRENT)
    assert store.read_value(seeded).get_secret_value() == legacy

    # A pending rotation on top does not change what is current until promoted.
    pending = store.write_pending(value("new"), str(uuid.uuid4()))
    now = store.current()
    assert now is not None
    assert now.version == seeded
    store.promote(pending.version, seeded)
    now = store.current()
    assert now is not None
    assert now.version == pending.version


def test_path_of_another_owner_is_refused_naming_that_owner(backend: Backend) -> None:
    store = backend.make()
    assert store.ensure_owned("other/policy", adopt=False) is False
    backend.tag(store, {"managed-by": "rotator", OWNER: "other/policy"})
    with pytest.raises(StoreOwnershipError, match="other/policy"):
        store.ensure_owned(OWNER_ID, adopt=False)
    # Not even adopt takes a path another policy rotates: two policies would fight over it.
    with pytest.raises(StoreOwnershipError, match="another RotationPolicy owns it"):
        store.ensure_owned(OWNER_ID, adopt=True)


def test_revoke_destroys_old_and_refuses_current(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    old, _, old_rotation = rotate(store, None, "old")
    new, new_value, _ = rotate(store, old.version, "new")

    with pytest.raises(StoreRefused):
        store.revoke(new.version)
    store.revoke(old.version)
    store.revoke(old.version)  # already destroyed = success
    store.revoke("999")  # never existed = success
    with pytest.raises(StoreVersionNotFound):
        store.read_value(old.version)
    assert store.find_by_rotation(old_rotation) is None
    current = store.current()
    assert current is not None
    assert current.version == new.version
    assert store.read_value(new.version).get_secret_value() == new_value.get_secret_value()


def test_mark_failed_rolls_the_pointer_back(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    old, old_value, _ = rotate(store, None, "old")
    new, _, new_rotation = rotate(store, old.version, "new")

    store.mark_failed(new.version, old.version)
    store.mark_failed(new.version, old.version)  # idempotent
    current = store.current()
    assert current is not None
    assert (current.version, current.state) == (old.version, VersionState.CURRENT)
    assert store.read_value(old.version).get_secret_value() == old_value.get_secret_value()
    with pytest.raises(StoreVersionNotFound):
        store.read_value(new.version)
    assert store.find_by_rotation(new_rotation) is None
    with pytest.raises(StoreRefused):
        store.mark_failed(old.version, old.version)

    # The next rotation starts cleanly from the restored version.
    third, _, _ = rotate(store, old.version, "third")
    current = store.current()
    assert current is not None
    assert current.version == third.version


def test_current_survives_more_failed_rotations_than_versions_kept(backend: Backend) -> None:
    """KV v2 purges the oldest versions beyond max_versions (10): a run of failed rotations must
    not purge the version that is still current."""
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    base, base_value, _ = rotate(store, None, "base")
    for n in range(12):
        failed, _, _ = rotate(store, base.version, f"failed-{n}")
        store.mark_failed(failed.version, base.version)
    current = store.current()
    assert current is not None
    assert current.version == base.version
    assert store.read_value(base.version).get_secret_value() == base_value.get_secret_value()


def test_unreachable_store_raises_store_unavailable(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    written, secret, _ = rotate(store, None, "kept")
    calls: list[Callable[[Store], object]] = [
        lambda s: s.current(),
        lambda s: s.write_pending(value("during-outage"), str(uuid.uuid4())),
        lambda s: s.read_value(written.version),
    ]
    with backend.unavailable(store) as down:
        for call in calls:
            with pytest.raises(StoreUnavailable) as caught:
                call(down)
            assert_no_secret(caught.value)
    # Back: nothing was lost (Vault was paused, not restarted).
    assert store.read_value(written.version).get_secret_value() == secret.get_secret_value()
    assert any((operation, "error") in backend.requests for operation in backend.observe_operations)


def test_no_secret_value_in_errors_reprs_or_metric_labels(backend: Backend) -> None:
    store = backend.make()
    store.ensure_owned(OWNER_ID, adopt=False)
    written, secret, _ = rotate(store, None, "repr")
    failures: list[StoreError] = []
    for attempt in (
        lambda: store.revoke(written.version),
        lambda: store.read_value("12345"),
        lambda: store.promote("777", written.version),
    ):
        with pytest.raises(StoreError) as caught:
            attempt()
        failures.append(caught.value)
    backend.race_next_write(store, f"{SECRET_MARK}-racer")
    conflict: pytest.ExceptionInfo[StoreError]
    if backend.conflict_at_promote:
        raced = store.write_pending(value("raced"), str(uuid.uuid4()))
        with pytest.raises(StoreRefused) as conflict:
            store.promote(raced.version, written.version)
    else:
        with pytest.raises(StoreConflict) as conflict:
            store.write_pending(value("raced"), str(uuid.uuid4()))
    failures.append(conflict.value)
    for failure in failures:
        assert_no_secret(failure)
    for shown in (repr(store), repr(written), repr(store.current()), repr(store.read_value(written.version))):
        assert SECRET_MARK not in shown
    assert secret.get_secret_value() not in str(backend.requests)
    operations = {operation for operation, _ in backend.requests}
    assert len(operations) <= 10, "bounded metric label"
    assert {result for _, result in backend.requests} <= {"ok", "error"}
