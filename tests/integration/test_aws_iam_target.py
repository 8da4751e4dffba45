"""awsIamAccessKey through the operator process (emulator + rollout simulator, moto for Secrets
Manager, IAM and STS): consumers that call sts:GetCallerIdentity with their pod's key never see it
refused across many rotations, and a crash at any step boundary leaves exactly one key per
rotation, none orphaned, nothing retired before verify."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from rotator.sandbox import demo
from rotator.sandbox.moto_server import MotoServer
from rotator.targets.aws_iam import MINTING_TAG, OWNER_TAG
from tests.fixtures.figures import figure
from tests.fixtures.rotation import NAMESPACE, TARGET_CRASH_POINTS, Bench
from tests.integration.test_aws_rotation import REGION, AwsBench

ROTATIONS = 20
KEY_ID, SECRET_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


class IamBench(AwsBench):
    """The AWS bench plus one IAM user whose keys the policy rotates."""

    def __init__(self, bench: Bench, moto: MotoServer) -> None:
        super().__init__(bench, moto)
        self.user = f"app-{uuid.uuid4().hex[:10]}"
        self.iam: Any = boto3.client("iam", **moto.client_kwargs(REGION))
        self.arn = str(self.iam.create_user(UserName=self.user)["User"]["Arn"])
        self._sts: dict[str, Any] = {}

    def policy_body(self) -> dict[str, Any]:
        body = super().policy_body()
        body["spec"]["secret"].update(usernameKey=KEY_ID, key=SECRET_KEY)
        body["spec"]["credential"] = {"awsIamAccessKey": {"userName": self.user}}
        return body

    def keys(self) -> dict[str, str]:
        listed = self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]
        return {k["AccessKeyId"]: k["Status"] for k in listed}

    def credential(self, version: str) -> tuple[str, str]:
        document = json.loads(self.value(version))
        self.bench.seen_values.add(document["secretAccessKey"])  # the leak scan looks for it
        return document["accessKeyId"], document["secretAccessKey"]

    def works(self, key_id: str, secret: str) -> bool:
        """sts:GetCallerIdentity with the key answers the user (moto answers a default identity
        for a key it does not know: a deleted key)."""
        sts = self._sts.get(key_id)
        if sts is None:
            sts = boto3.session.Session().client(
                "sts",
                endpoint_url=self.moto.endpoint_url,
                region_name=REGION,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
            )
            self._sts[key_id] = sts
        return bool(sts.get_caller_identity()["Arn"] == self.arn)


@pytest.fixture
def iam(bench: Bench, moto_server: MotoServer) -> Iterator[IamBench]:
    iam_bench = IamBench(bench, moto_server)
    yield iam_bench
    iam_bench.record_all_values()  # before the bench's leak scan (it tears down after us)


@dataclass
class LiveCallers:
    """The consumers: every ready pod calls sts:GetCallerIdentity over and over with the key of
    the Secret version it started with. A refused call of a pod that still exists afterwards is a
    violation: the old key stopped working too early."""

    iam: IamBench
    attempts: int = 0
    refused: list[str] = field(default_factory=list)
    versions_used: set[str] = field(default_factory=set)
    _credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LiveCallers:
        self._thread = threading.Thread(target=self._run, name="consumers", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _credential(self, version: str) -> tuple[str, str]:
        if version not in self._credentials:
            self._credentials[version] = self.iam.credential(version)
        return self._credentials[version]

    def _run(self) -> None:
        bench = self.iam.bench
        while not self._stop.is_set():
            for pod in bench.pods():
                version = pod.secret_versions[demo.SECRET].version
                if not pod.ready or not version:
                    continue
                key_id, secret = self._credential(version)
                with self._lock:
                    self.attempts += 1
                    self.versions_used.add(version)
                if not self.iam.works(key_id, secret) and pod.name in {p.name for p in bench.pods()}:
                    with self._lock:
                        self.refused.append(f"pod {pod.name} (version {version}, access key {key_id})")


@pytest.mark.long(seconds=42)
def test_twenty_rotations_under_live_sts_calls_refuse_no_consumer(iam: IamBench) -> None:
    bench = iam.bench
    iam.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    started = time.monotonic()
    with LiveCallers(iam) as consumers:
        for i in range(ROTATIONS):
            bench.force(f"live-{i}")
            status = bench.wait_forced(f"live-{i}")
            assert status["history"][0]["result"] == "Succeeded", status["history"][0]
    elapsed = time.monotonic() - started
    figure(
        f"awsIamAccessKey: {ROTATIONS} rotations in {elapsed:.0f} s under {consumers.attempts} "
        f"STS calls ({consumers.attempts / elapsed:.0f}/s), {len(consumers.refused)} refused"
    )
    assert not consumers.refused, consumers.refused[:5]
    assert len(consumers.versions_used) >= ROTATIONS, "every key handed to pods was exercised"
    key_id, secret = bench.secret_value(KEY_ID), bench.secret_value(SECRET_KEY)
    assert key_id is not None
    assert secret is not None
    assert iam.keys() == {key_id: "Active"}, "one key left: every old one deleted"
    assert iam.works(key_id, secret)


@pytest.mark.parametrize("point", TARGET_CRASH_POINTS)
def test_crash_at_every_step_leaves_exactly_one_new_key_and_no_orphan(iam: IamBench, point: str) -> None:
    bench = iam.bench
    iam.seed()
    bench.start_armed(point)
    status = bench.wait_rotations(1).get("status") or {}
    first = iam.credential(status["currentVersion"])
    assert iam.keys() == {first[0]: "Active"}

    bench.crash_in_forced_rotation(point)
    rotation = bench.status().get("rotation") or {}
    if not iam.works(*first):
        assert rotation.get("verifiedAt"), f"old key retired before verification (crash at {point})"

    bench.operator.start()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    second = iam.credential(status["currentVersion"])
    assert second[0] != first[0]
    assert (bench.secret_value(KEY_ID), bench.secret_value(SECRET_KEY)) == second
    assert iam.keys() == {second[0]: "Active"}, "exactly the new key: the old one deleted, no orphan"
    assert iam.works(*second)
    assert not iam.works(*first)
    tags = {t["Key"]: t["Value"] for t in iam.iam.list_user_tags(UserName=iam.user)["Tags"]}
    assert MINTING_TAG not in tags
    assert tags[OWNER_TAG] == f"{NAMESPACE}/{demo.POLICY}"
