"""The awsIamAccessKey target through the engine, in process, against the real moto server (IAM
and STS): the two-key dance, the old key deleted only after the new one authenticated, the new
one deleted on rollback, the key limit and the store kind refused by name, and a key minted and
lost before the store write cleaned up by the same rotation (and only then)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import pytest

from rotator.models import Step, reasons
from rotator.models.keys import FORCE_ROTATE, STORE_CREDENTIAL_LABEL
from rotator.sandbox import demo
from rotator.sandbox.moto_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoServer
from rotator.steps.checkpoints import Checkpoint
from rotator.stores.opener import StoreOpener
from rotator.targets import aws_iam
from tests.engine.harness import DEPLOYMENT, GRACE, NS, EngineBench, Run

REGION = "us-east-1"
KEYS_SECRET = "aws-keys"
KEY_ID, SECRET_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


class IamUser:
    """One IAM user on moto, seen with the admin's keys (as an operator of the account would)."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.name = f"app-{uuid.uuid4().hex[:10]}"
        self.iam: Any = boto3.client("iam", **moto.client_kwargs(REGION))
        self.arn = self.iam.create_user(UserName=self.name)["User"]["Arn"]

    def keys(self) -> dict[str, str]:
        """Access key id -> status."""
        listed = self.iam.list_access_keys(UserName=self.name)["AccessKeyMetadata"]
        return {k["AccessKeyId"]: k["Status"] for k in listed}

    def tags(self) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.iam.list_user_tags(UserName=self.name)["Tags"]}

    def create_key(self) -> str:
        return str(self.iam.create_access_key(UserName=self.name)["AccessKey"]["AccessKeyId"])

    def identity(self, key_id: str, secret: str) -> str:
        """The ARN STS answers for a key (moto answers a default identity for a key it does not know)."""
        sts: Any = boto3.client(
            "sts",
            endpoint_url=self.moto.endpoint_url,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        return str(sts.get_caller_identity()["Arn"])

    def works(self, key_id: str, secret: str) -> bool:
        return self.identity(key_id, secret) == self.arn


@pytest.fixture
def user(moto_server: MotoServer) -> IamUser:
    return IamUser(moto_server)


@pytest.fixture(autouse=True)
def quick_propagation(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no propagation delay: a refused key is refused at once, no need to wait seconds."""
    monkeypatch.setattr(aws_iam, "PROPAGATION_WAITS", (0.01,))


def aws_store(moto: MotoServer) -> dict[str, Any]:
    return {
        "apiVersion": demo.API_VERSION,
        "kind": "RotationStore",
        "metadata": {"name": "aws", "namespace": NS},
        "spec": {
            "awsSecretsManager": {
                "region": REGION,
                "endpoint": moto.endpoint_url,
                "auth": {"accessKeySecretRef": {"name": KEYS_SECRET}},
            }
        },
    }


def keys_secret() -> dict[str, Any]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEYS_SECRET, "namespace": NS, "labels": {STORE_CREDENTIAL_LABEL: "true"}},
        "data": {KEY_ID: b64(DUMMY_ACCESS_KEY_ID), SECRET_KEY: b64(DUMMY_SECRET_ACCESS_KEY)},
    }


def aws_spec(user: IamUser, *, store: str = "aws") -> dict[str, Any]:
    return {
        "secret": {
            "name": demo.SECRET,
            "usernameKey": KEY_ID,
            "key": SECRET_KEY,
            "template": {"credentials": "[default]\naws_access_key_id = {{ .accessKeyId }}\n"},
        },
        "credential": {"awsIamAccessKey": {"userName": user.name}},
        "storeRef": {"kind": "RotationStore", "name": store},
    }


def seed(
    bench: EngineBench, user: IamUser, moto: MotoServer, *, progress_deadline: int = 600, **spec: Any
) -> None:
    """The policy on an AWS RotationStore (the store's data stays in the bench's FakeStore; its
    AWS identity, the keys Secret, is what manages the user's keys)."""
    bench.seed(progress_deadline=progress_deadline, **aws_spec(user), **spec)
    demo.create(bench.kube, demo.store_collection(NS), aws_store(moto))
    demo.create(bench.kube, f"/api/v1/namespaces/{NS}/secrets", keys_secret())


def aws_deps(bench: EngineBench) -> dict[str, Any]:
    return {"aws_session": StoreOpener(bench.kube, bench.metrics).aws_session}


def rotate_to_end(bench: EngineBench) -> list[Run]:
    return bench.rotate_until(lambda run: run.status.rotation is None and bool(run.status.history))


def secret_key(bench: EngineBench) -> tuple[str, str]:
    key_id, secret = bench.secret_value(KEY_ID), bench.secret_value(SECRET_KEY)
    assert key_id is not None
    assert secret is not None
    return key_id, secret


@pytest.fixture
def aws_bench(bench: EngineBench) -> EngineBench:
    """The bench with the production AWS session opener (StoreOpener.aws_session) wired in."""
    original = bench.deps

    def deps(**overrides: Any) -> Any:
        return original(**{**aws_deps(bench), **overrides})

    bench.deps = deps  # type: ignore[method-assign]
    return bench


def test_two_key_dance_deletes_the_old_key_only_after_the_new_one_authenticated(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    seed(bench, user, moto_server, revoke=GRACE)
    first = rotate_to_end(bench)[-1]
    assert first.status.last_result == "Succeeded"
    key_a, secret_a = secret_key(bench)
    assert user.keys() == {key_a: "Active"}
    assert user.works(key_a, secret_a)
    stored = json.loads(bench.store_value(first.status.current_version or "") or "{}")
    assert stored == {"accessKeyId": key_a, "secretAccessKey": secret_a}, "the store holds both fields"
    assert bench.secret_value("credentials") == f"[default]\naws_access_key_id = {key_a}\n"
    assert user.tags() == {aws_iam.OWNER_TAG: f"{NS}/{demo.POLICY}"}, "claimed; the mint marker dropped"

    bench.annotate(FORCE_ROTATE, "two")
    runs = bench.rotate_to_revoke()
    key_b, secret_b = secret_key(bench)
    assert key_b != key_a
    assert user.keys() == {key_a: "Active", key_b: "Active"}, "both valid while consumers move over"
    assert user.works(key_a, secret_a), "the old key keeps working until verify passed"
    assert any(run.status.rotation and run.status.rotation.verified_at for run in runs[-1:])
    runs += rotate_to_end(bench)
    assert runs[-1].status.last_result == "Succeeded"
    assert user.keys() == {key_b: "Active"}, "the old key is deleted after verify"
    assert not user.works(key_a, secret_a)
    assert user.works(key_b, secret_b)

    said = json.dumps([[run.events, run.status.model_dump(mode="json")] for run in [first, *runs]])
    assert secret_a not in said
    assert secret_b not in said, "a secret access key in status/Events"
    assert f"access key {key_b}" in said, "status and Events name keys by their id"


def test_a_failed_rollout_deletes_the_new_key_and_keeps_the_old(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    seed(bench, user, moto_server, progress_deadline=1)
    rotate_to_end(bench)
    key_a, secret_a = secret_key(bench)
    bench.annotate(FORCE_ROTATE, "bad-rollout")
    bench.tick(60)
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)
    runs = rotate_to_end(bench)
    assert runs[-1].status.last_result == "RolledBack"
    assert any(run.step == Step.ROLLBACK for run in runs)
    assert secret_key(bench) == (key_a, secret_a), "consumers are back on the old key"
    assert user.keys() == {key_a: "Active"}, "the failed new key is deleted, the old one kept"
    assert user.works(key_a, secret_a)


def test_a_new_key_sts_refuses_rolls_back_and_the_old_one_keeps_working(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    seed(bench, user, moto_server)
    rotate_to_end(bench)
    key_a, secret_a = secret_key(bench)
    bench.annotate(FORCE_ROTATE, "broken")
    bench.rotate_to_step(Step.VERIFY)
    key_b, _ = secret_key(bench)
    user.iam.delete_access_key(UserName=user.name, AccessKeyId=key_b)  # the fault, behind our back
    runs = rotate_to_end(bench)
    assert runs[-1].status.last_result == "RolledBack"
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any("does not authenticate" in e and f"access key {key_b}" in e for e in errors), errors
    assert secret_key(bench) == (key_a, secret_a)
    assert user.keys() == {key_a: "Active"}
    assert user.works(key_a, secret_a), "the old key was never retired"


def test_a_user_with_two_keys_rotator_does_not_track_is_refused_by_name(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    theirs = {user.create_key(), user.create_key()}
    bench = aws_bench
    seed(bench, user, moto_server)
    runs = rotate_to_end(bench)
    assert runs[-1].status.last_result in ("RolledBack", "Failed")
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    limit = [e for e in errors if e.startswith("spec.credential.awsIamAccessKey.userName: IAM user")]
    assert limit, errors
    assert "already has 2 access keys" in limit[0]
    assert all(key in limit[0] for key in theirs), "the message names the keys to look at"
    assert reasons.TARGET_KEY_LIMIT in [reason for run in runs for reason in run.reasons]
    assert set(user.keys()) == theirs, "no key of theirs was touched, none created"


def test_a_spare_key_beside_the_tracked_one_is_refused_not_deleted(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    seed(bench, user, moto_server)
    rotate_to_end(bench)
    key_a, secret_a = secret_key(bench)
    theirs = user.create_key()
    bench.annotate(FORCE_ROTATE, "limit")
    runs = rotate_to_end(bench)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(f"{theirs} is not the key this policy tracks" in e for e in errors), errors
    assert user.keys() == {key_a: "Active", theirs: "Active"}
    assert secret_key(bench) == (key_a, secret_a)


class Crash(Exception):
    """The operator died here (in process: the reconcile stops and nothing after it runs; the
    engine reports it as an unexpected failure, as Kopf would see it)."""


def crash_at(bench: EngineBench, point: Checkpoint) -> None:
    """Reconcile until the rotation reaches ``point``, and stop there once."""
    crashed: list[Checkpoint] = []

    def hook(reached: Checkpoint) -> None:
        bench.checkpoints.append(reached)
        if reached == point and not crashed:
            crashed.append(reached)
            raise Crash(reached)

    for _ in range(10):
        bench.reconcile(checkpoint=hook)
        if crashed:
            return
    raise AssertionError(f"never reached {point}")


def test_a_key_minted_and_lost_before_the_store_write_is_deleted_by_the_same_rotation(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    seed(bench, user, moto_server)
    rotate_to_end(bench)
    key_a, _ = secret_key(bench)
    bench.annotate(FORCE_ROTATE, "crash")
    crash_at(bench, Checkpoint.GENERATE_AFTER_MINT)
    lost = set(user.keys()) - {key_a}
    assert len(lost) == 1, "the crash left a key no store holds"
    assert user.tags()[aws_iam.MINTING_TAG].split()[1:] == [key_a], "announced with the keys before it"
    runs = rotate_to_end(bench)
    assert runs[-1].status.last_result == "Succeeded"
    key_b, secret_b = secret_key(bench)
    assert user.keys() == {key_b: "Active"}, "exactly one new key; the lost one deleted, the old retired"
    assert key_b not in lost
    assert user.works(key_b, secret_b)


def test_a_second_unknown_key_after_a_lost_mint_is_never_deleted(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    """Two keys appeared after the announcement: one is ours, one someone else's, and nothing says
    which: both stay, and the rotation is refused by name."""
    bench = aws_bench
    seed(bench, user, moto_server)
    crash_at(bench, Checkpoint.GENERATE_AFTER_MINT)
    theirs = user.create_key()
    before = set(user.keys())
    assert len(before) == 2
    runs = rotate_to_end(bench)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(e.startswith("spec.credential.awsIamAccessKey.userName") for e in errors), errors
    assert set(user.keys()) == before, "neither key deleted"
    assert theirs in before


@pytest.mark.parametrize("opener", ["store-opener", "no-aws-wired"])
def test_a_vault_store_is_refused_naming_the_field(bench: EngineBench, user: IamUser, opener: str) -> None:
    bench.seed(**aws_spec(user, store=demo.STORE))  # the bench's Vault RotationStore
    wired = aws_deps(bench) if opener == "store-opener" else {}
    runs = []
    for _ in range(60):
        runs.append(bench.reconcile(**wired))
        if runs[-1].status.rotation is None and runs[-1].status.history:
            break
        bench.tick(runs[-1].requeue or 0.0)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(
        e.startswith("spec.credential.awsIamAccessKey needs an AWS Secrets Manager store") for e in errors
    ), errors
    assert reasons.TARGET_INVALID in [reason for run in runs for reason in run.reasons]
    assert user.keys() == {}, "nothing created in IAM"


def test_a_user_claimed_by_another_policy_is_refused(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    user.iam.tag_user(UserName=user.name, Tags=[{"Key": aws_iam.OWNER_TAG, "Value": "other/policy"}])
    bench = aws_bench
    seed(bench, user, moto_server)
    runs = rotate_to_end(bench)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any("is tagged rotator.dev/owner=other/policy" in e for e in errors), errors
    assert reasons.TARGET_NOT_OWNED in [reason for run in runs for reason in run.reasons]
    assert user.keys() == {}


def test_a_missing_user_is_refused_naming_the_field(
    aws_bench: EngineBench, user: IamUser, moto_server: MotoServer
) -> None:
    bench = aws_bench
    user.iam.delete_user(UserName=user.name)
    seed(bench, user, moto_server)
    runs = rotate_to_end(bench)
    errors = [r.status.rotation.last_error or "" for r in runs if r.status.rotation]
    assert any(
        e == f"spec.credential.awsIamAccessKey.userName: IAM user {user.name!r} does not exist"
        for e in errors
    ), errors
