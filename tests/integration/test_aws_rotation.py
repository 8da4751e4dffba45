"""The six-step rotation end to end on AWS Secrets Manager: the real moto server, the cluster
emulator with its rollout simulator, and the operator as a real process. The bench's leak scan
also looks for every value moto holds for the secret (the fixture below records them)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mypy_boto3_secretsmanager import SecretsManagerClient

from rotator.kube import policy_path
from rotator.models.keys import STORE_CREDENTIAL_LABEL
from rotator.sandbox import demo
from rotator.sandbox.moto_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoServer
from rotator.stores.aws.auth import aws_client
from tests.fixtures.rotation import NAMESPACE, Bench

KEYS_SECRET = "aws-keys"
REGION = "us-east-1"


class AwsBench:
    """The bench plus one Secrets Manager secret on moto."""

    def __init__(self, bench: Bench, moto: MotoServer) -> None:
        self.bench = bench
        self.moto = moto
        self.path = f"rotator-test/{uuid.uuid4().hex[:12]}"
        self.secret_id = f"{NAMESPACE}/{self.path}"  # the store's prefix for the namespace + spec.path
        self.client: SecretsManagerClient = aws_client(
            REGION, moto.endpoint_url, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
        )

    def seed(self, *, progress_deadline: int = 600, keys_secret: bool = True) -> None:
        self.bench.seed(progress_deadline=progress_deadline, create_policy=False)
        if keys_secret:
            self.create_keys_secret()
        demo.create(self.bench.kube, demo.store_collection(NAMESPACE), self.store())
        self.bench.kube.create(policy_path(NAMESPACE), self.policy_body())

    def store(self) -> dict[str, Any]:
        """A RotationStore on moto with static keys from the namespace's labelled Secret."""
        return {
            "apiVersion": "rotator.dev/v1alpha1",
            "kind": "RotationStore",
            "metadata": {"name": "aws", "namespace": NAMESPACE},
            "spec": {
                "awsSecretsManager": {
                    "region": REGION,
                    "endpoint": self.moto.endpoint_url,
                    "auth": {"accessKeySecretRef": {"name": KEYS_SECRET}},
                }
            },
        }

    def policy_body(self) -> dict[str, Any]:
        body = self.bench.policy_body()
        body["spec"]["storeRef"] = {"kind": "RotationStore", "name": "aws"}
        body["spec"]["path"] = self.path
        return body

    def create_keys_secret(self) -> None:
        demo.create(
            self.bench.kube,
            f"/api/v1/namespaces/{NAMESPACE}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": KEYS_SECRET,
                    "namespace": NAMESPACE,
                    "labels": {STORE_CREDENTIAL_LABEL: "true"},
                },
                "type": "Opaque",
                "data": {
                    "AWS_ACCESS_KEY_ID": base64.b64encode(DUMMY_ACCESS_KEY_ID.encode()).decode(),
                    "AWS_SECRET_ACCESS_KEY": base64.b64encode(DUMMY_SECRET_ACCESS_KEY.encode()).decode(),
                },
            },
        )

    def versions(self) -> dict[str, list[str]]:
        """Version id -> staging labels, deprecated versions included."""
        response = self.client.list_secret_version_ids(SecretId=self.secret_id, IncludeDeprecated=True)
        return {v["VersionId"]: list(v.get("VersionStages") or []) for v in response["Versions"]}

    def holder(self, stage: str) -> str | None:
        return next((v for v, stages in self.versions().items() if stage in stages), None)

    def value(self, version: str) -> str:
        response = self.client.get_secret_value(SecretId=self.secret_id, VersionId=version)
        value = response["SecretString"]
        self.bench.seen_values.add(value)
        return value

    def tags(self) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.client.describe_secret(SecretId=self.secret_id)["Tags"]}

    def record_all_values(self) -> None:
        try:
            self.client.describe_secret(SecretId=self.secret_id)
        except self.client.exceptions.ResourceNotFoundException:
            return  # (moto answers 500, not ResourceNotFound, when listing a missing secret's versions)
        for version in self.versions():
            self.value(version)


@pytest.fixture
def aws(bench: Bench, moto_server: MotoServer) -> Iterator[AwsBench]:
    aws_bench = AwsBench(bench, moto_server)
    yield aws_bench
    aws_bench.record_all_values()  # before the bench's leak scan (it tears down after us)


def history(status: Any) -> list[dict[str, Any]]:
    return list(status.get("history") or [])


def condition(status: Any, type_: str) -> dict[str, Any]:
    return dict(next(c for c in status.get("conditions") or [] if c["type"] == type_))


def test_aws_initial_and_forced_rotation_end_to_end(aws: AwsBench) -> None:
    bench = aws.bench
    aws.seed()
    bench.operator.start()
    status = bench.wait_rotations(1).get("status") or {}
    assert history(status)[0]["result"] == "Succeeded"
    assert history(status)[0]["reason"] == "Initial"
    first_version = status["currentVersion"]
    assert history(status)[0]["id"] == first_version, "the rotation id is the VersionId"
    assert aws.holder("AWSCURRENT") == first_version
    first = bench.secret_value()
    assert first is not None
    assert first == aws.value(first_version)
    assert len(first) == 32
    tags = aws.tags()
    assert tags["managed-by"] == "rotator"
    assert tags["rotator.dev/owner"] == f"{NAMESPACE}/{demo.POLICY}"

    bench.force(uuid.uuid4().hex)  # a plain value: a past timestamp would already be satisfied
    status = bench.wait_rotations(2).get("status") or {}
    entry = history(status)[0]
    assert (entry["result"], entry["reason"]) == ("Succeeded", "Forced")
    second_version = status["currentVersion"]
    assert entry["version"] == second_version == entry["id"]
    assert second_version != first_version
    assert status["phase"] == "Idle"
    assert status["storeKind"] == "AWSSecretsManager"
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Degraded")["status"] == "False"

    # AWS, the Secret and the pods agree on the new version; the old one is revoked.
    versions = aws.versions()
    assert versions[second_version] == ["AWSCURRENT"]
    assert versions[first_version] == [], "revoked: AWSPREVIOUS dropped, the version is deprecated"
    assert aws.holder("AWSPENDING") is None
    second = bench.secret_value()
    assert second == aws.value(second_version)
    assert second != first
    assert bench.secret_value("password.previous") is None
    secret = bench.secret() or {}
    assert secret["metadata"]["annotations"]["rotator.dev/version"] == second_version
    pods = bench.pods()
    assert len(pods) == 2
    assert all(p.ready and p.secret_versions[demo.SECRET].version == second_version for p in pods)
    assert "RotationSucceeded" in set(bench.event_reasons())
    assert 'store="aws"' in bench.metrics_text()


def test_aws_failed_rollout_rolls_back_and_marks_the_new_version_failed(aws: AwsBench) -> None:
    bench = aws.bench
    aws.seed(progress_deadline=2)
    bench.operator.start()
    status = bench.wait_rotations(1).get("status") or {}
    old_version = status["currentVersion"]
    old = bench.secret_value()
    bench.kube_server.set_fail_readiness("Deployment", NAMESPACE, demo.DEPLOYMENT, True)
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    entry = history(status)[0]
    assert entry["result"] == "RolledBack"
    assert entry["version"] == old_version
    assert status["currentVersion"] == old_version
    assert condition(status, "Degraded")["reason"] == "RotationRolledBack"

    # AWSCURRENT is back on the old version, which was never revoked; the new one is failed.
    failed_version = entry["id"]
    versions = aws.versions()
    assert failed_version in versions, "the rotation wrote its version"
    assert aws.holder("AWSCURRENT") == old_version
    assert versions[failed_version] == [], "no staging label left on the failed version"
    assert failed_version in aws.tags()["rotator.dev/failed-versions"].split()
    assert bench.secret_value() == old
    assert aws.value(old_version) == old
    assert aws.value(failed_version) != old


def test_aws_unowned_secret_is_refused_until_adopted_then_rotated(aws: AwsBench) -> None:
    bench = aws.bench
    legacy = f"pre-existing-{uuid.uuid4().hex}"
    bench.seen_values.add(legacy)
    seeded = aws.client.create_secret(Name=aws.secret_id, SecretString=legacy)["VersionId"]
    aws.seed()
    bench.operator.start()
    status = bench.wait(lambda o: bool((o.get("status") or {}).get("conditions")), 30, "conditions")["status"]
    ready = condition(status, "Ready")
    assert ready["reason"] == "StoreNotOwned"
    assert aws.secret_id in ready["message"]
    assert aws.versions() == {seeded: ["AWSCURRENT"]}, "a refused secret is not touched"

    bench.patch_spec({"adopt": True})
    status = bench.wait(lambda o: (o.get("status") or {}).get("currentVersion") == seeded, 30, "adoption")[
        "status"
    ]
    assert not status.get("history"), "an adopted value needs no initial rotation"
    bench.wait(lambda o: bench.secret_value() == legacy, 30, "Secret synced")
    assert "StoreAdopted" in bench.event_reasons()

    bench.force()
    status = bench.wait_rotations(1).get("status") or {}
    assert history(status)[0]["result"] == "Succeeded"
    new_version = status["currentVersion"]
    versions = aws.versions()
    assert versions[new_version] == ["AWSCURRENT"]
    assert versions[seeded] == [], "the adopted value was revoked after the rotation"
    assert bench.secret_value() == aws.value(new_version) != legacy


def test_aws_missing_access_key_secret_is_named_in_the_ready_condition(aws: AwsBench) -> None:
    bench = aws.bench
    aws.seed(keys_secret=False)
    bench.operator.start()
    status = bench.wait(lambda o: bool((o.get("status") or {}).get("conditions")), 30, "conditions")["status"]
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StoreAuthMissing")
    assert "RotationStore/aws spec.awsSecretsManager.auth.accessKeySecretRef" in ready["message"]
    assert f"Secret {NAMESPACE}/{KEYS_SECRET} not found" in ready["message"]
    with pytest.raises(aws.client.exceptions.ResourceNotFoundException):
        aws.client.describe_secret(SecretId=aws.secret_id)


def test_aws_web_identity_logs_in_as_the_namespace_service_account(aws: AwsBench) -> None:
    """A ClusterRotationStore with webIdentity: the operator mints a token for the policy's
    namespace's service account (audience sts.amazonaws.com) and trades it with STS for the
    namespace's role; no static key exists anywhere."""
    bench = aws.bench
    bench.seed(create_policy=False, progress_deadline=600)
    demo.create(
        bench.kube, f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", demo.service_account(NAMESPACE)
    )
    store = {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": "aws-web"},
        "spec": {
            "awsSecretsManager": {
                "region": REGION,
                "endpoint": aws.moto.endpoint_url,
                "auth": {"webIdentity": {"roleArn": "arn:aws:iam::123456789012:role/rotator-{namespace}"}},
            },
            "namespaces": {"names": [NAMESPACE]},
        },
    }
    bench.kube.create("/apis/rotator.dev/v1alpha1/clusterrotationstores", store)
    body = aws.policy_body()
    body["spec"]["storeRef"] = {"kind": "ClusterRotationStore", "name": "aws-web"}
    bench.kube.create(policy_path(NAMESPACE), body)
    bench.operator.start()
    status = bench.wait_rotations(1).get("status") or {}
    assert history(status)[0]["result"] == "Succeeded"
    current = aws.client.get_secret_value(SecretId=aws.secret_id, VersionStage="AWSCURRENT")
    assert current["SecretString"] == bench.secret_value()
    minted = bench.kube_server.call(lambda emulator: list(emulator.tokens.values()))
    web = [t for t in minted if t.audiences == ("sts.amazonaws.com",)]
    assert [t.username for t in web] == [f"system:serviceaccount:{NAMESPACE}:rotator"], (
        "only the namespace's identity"
    )
