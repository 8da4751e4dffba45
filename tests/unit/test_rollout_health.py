"""Rollout health from workload objects shaped as the API returns them, in every state we meet.

The base objects are trimmed copies of real ``kubectl get -o json`` output (apps/v1); each row
changes only the fields the controller changes in that state. Messages match
``kubectl rollout status`` where kubectl has one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from rotator.workloads.health import RolloutHealth, RolloutState, rollout_health

COMPLETE, PROGRESSING, FAILED = RolloutState.COMPLETE, RolloutState.PROGRESSING, RolloutState.FAILED


def merged(base: Mapping[str, Any], **sections: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each top-level section (metadata/spec/status) updated.

    A value of None removes the key, as the API omits zero-valued fields.
    """
    obj = copy.deepcopy(dict(base))
    for section, changes in sections.items():
        target = obj.setdefault(section, {})
        for key, value in changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(value)
    return obj


POD_TEMPLATE = {
    "metadata": {
        "labels": {"app": "orders-api"},
        "annotations": {"rotator.dev/restarted-at": "2026-11-27T20:00:00Z", "rotator.dev/rotation-id": "r-1"},
    },
    "spec": {
        "containers": [
            {
                "name": "api",
                "image": "ghcr.io/shop/orders-api:1.4.2",
                "env": [
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "orders-db-credentials", "key": "password"}},
                    }
                ],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    },
}

# --- Deployment -------------------------------------------------------------------------------

AVAILABLE = {
    "type": "Available",
    "status": "True",
    "lastUpdateTime": "2026-11-27T19:50:02Z",
    "lastTransitionTime": "2026-11-27T19:50:02Z",
    "reason": "MinimumReplicasAvailable",
    "message": "Deployment has minimum availability.",
}
PROGRESSED = {
    "type": "Progressing",
    "status": "True",
    "lastUpdateTime": "2026-11-27T20:00:41Z",
    "lastTransitionTime": "2026-11-27T19:49:40Z",
    "reason": "NewReplicaSetAvailable",
    "message": 'ReplicaSet "orders-api-5f4d7c8b9" has successfully progressed.',
}
UPDATING = {
    **PROGRESSED,
    "lastUpdateTime": "2026-11-27T20:00:03Z",
    "reason": "ReplicaSetUpdated",
    "message": 'ReplicaSet "orders-api-5f4d7c8b9" is progressing.',
}
DEADLINE = {
    **PROGRESSED,
    "status": "False",
    "lastUpdateTime": "2026-11-27T20:10:03Z",
    "lastTransitionTime": "2026-11-27T20:10:03Z",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "orders-api-5f4d7c8b9" has timed out progressing.',
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "orders-api",
        "namespace": "shop",
        "uid": "6f1c1f0e-3f0b-4d4a-9a57-0c5b4b7f9d11",
        "resourceVersion": "48213",
        "generation": 3,
        "creationTimestamp": "2026-11-20T09:12:44Z",
        "annotations": {"deployment.kubernetes.io/revision": "3"},
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "orders-api"}},
        "template": POD_TEMPLATE,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [AVAILABLE, PROGRESSED],
    },
}

DEPLOYMENT_CASES = [
    pytest.param(DEPLOYMENT, COMPLETE, 'deployment "orders-api" successfully rolled out', id="complete"),
    pytest.param(
        merged(DEPLOYMENT, metadata={"generation": 4}),
        PROGRESSING,
        "Waiting for deployment spec update to be observed...",
        id="restart-not-yet-observed",
    ),
    pytest.param(
        merged(
            DEPLOYMENT,
            status={
                "replicas": 4,
                "updatedReplicas": 1,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "unavailableReplicas": 1,
                "conditions": [AVAILABLE, UPDATING],
            },
        ),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 1 out of 3 new replicas have been updated...',
        id="surging",
    ),
    pytest.param(
        merged(
            DEPLOYMENT,
            status={
                "replicas": 4,
                "updatedReplicas": 3,
                "readyReplicas": 4,
                "availableReplicas": 4,
                "unavailableReplicas": None,
                "conditions": [AVAILABLE, UPDATING],
            },
        ),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 1 old replicas are pending termination...',
        id="old-pod-terminating",
    ),
    pytest.param(
        merged(
            DEPLOYMENT,
            status={
                "readyReplicas": 1,
                "availableReplicas": 1,
                "unavailableReplicas": 2,
                "conditions": [AVAILABLE, UPDATING],
            },
        ),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 1 of 3 updated replicas are available...',
        id="updated-not-available",
    ),
    pytest.param(
        merged(DEPLOYMENT, status={"readyReplicas": 2}),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 2 of 3 updated replicas are ready...',
        id="inconsistent-snapshot-ready-lags",
    ),
    pytest.param(
        merged(DEPLOYMENT, status={"unavailableReplicas": 1}),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 1 replicas are unavailable...',
        id="inconsistent-snapshot-unavailable",
    ),
    pytest.param(
        merged(
            DEPLOYMENT,
            status={
                "replicas": 4,
                "updatedReplicas": 1,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "unavailableReplicas": 1,
                "conditions": [AVAILABLE, DEADLINE],
            },
        ),
        FAILED,
        'deployment "orders-api" exceeded its progress deadline: '
        'ReplicaSet "orders-api-5f4d7c8b9" has timed out progressing.',
        id="progress-deadline-exceeded",
    ),
    pytest.param(
        merged(DEPLOYMENT, metadata={"generation": 4}, status={"conditions": [AVAILABLE, DEADLINE]}),
        PROGRESSING,
        "Waiting for deployment spec update to be observed...",
        id="stale-deadline-from-previous-generation",
    ),
    pytest.param(
        merged(DEPLOYMENT, spec={"paused": True}),
        FAILED,
        'deployment "orders-api" is paused: the restart will not roll out until it is resumed',
        id="paused",
    ),
    pytest.param(
        merged(
            DEPLOYMENT,
            spec={"replicas": 0},
            status={
                "replicas": None,
                "updatedReplicas": None,
                "readyReplicas": None,
                "availableReplicas": None,
            },
        ),
        COMPLETE,
        'deployment "orders-api" successfully rolled out',
        id="scaled-to-zero-omits-counts",
    ),
    pytest.param(
        merged(DEPLOYMENT, spec={"replicas": None}, status={"replicas": 1, "updatedReplicas": 0}),
        PROGRESSING,
        'Waiting for deployment "orders-api" rollout to finish: 0 out of 1 new replicas have been updated...',
        id="replicas-default-to-one",
    ),
    pytest.param(
        merged(DEPLOYMENT, status={"observedGeneration": None, "conditions": None}),
        PROGRESSING,
        "Waiting for deployment spec update to be observed...",
        id="just-created-no-status",
    ),
]


@pytest.mark.parametrize(("obj", "state", "message"), DEPLOYMENT_CASES)
def test_deployment(obj: dict[str, Any], state: RolloutState, message: str) -> None:
    assert rollout_health("Deployment", obj) == RolloutHealth(state, message)


# --- StatefulSet ------------------------------------------------------------------------------

STATEFULSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {
        "name": "orders-db",
        "namespace": "shop",
        "uid": "0b6f6a2e-6d0e-4d1b-8a8e-3c3c2f1e7a55",
        "resourceVersion": "51020",
        "generation": 2,
        "creationTimestamp": "2026-11-20T09:12:44Z",
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "orders-db"}},
        "serviceName": "orders-db",
        "template": POD_TEMPLATE,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    },
    "status": {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "orders-db-6d5f8c7b9",
        "updateRevision": "orders-db-6d5f8c7b9",
        "collisionCount": 0,
        "availableReplicas": 3,
    },
}

ROLLING = {
    "currentReplicas": 2,
    "updatedReplicas": 1,
    "currentRevision": "orders-db-6d5f8c7b9",
    "updateRevision": "orders-db-7b8c9d6f4",
}

STATEFULSET_CASES = [
    pytest.param(
        STATEFULSET,
        COMPLETE,
        "statefulset rolling update complete 3 pods at revision orders-db-6d5f8c7b9...",
        id="complete",
    ),
    pytest.param(
        merged(STATEFULSET, metadata={"generation": 3}),
        PROGRESSING,
        "Waiting for statefulset spec update to be observed...",
        id="restart-not-yet-observed",
    ),
    pytest.param(
        merged(STATEFULSET, status={"observedGeneration": None}),
        PROGRESSING,
        "Waiting for statefulset spec update to be observed...",
        id="never-observed",
    ),
    pytest.param(
        merged(STATEFULSET, status={**ROLLING, "readyReplicas": 2, "availableReplicas": 2}),
        PROGRESSING,
        "Waiting for 1 pods to be ready...",
        id="pod-being-replaced",
    ),
    pytest.param(
        merged(STATEFULSET, status=ROLLING),
        PROGRESSING,
        "waiting for statefulset rolling update to complete 1 pods at revision orders-db-7b8c9d6f4...",
        id="rolling",
    ),
    pytest.param(
        merged(
            STATEFULSET,
            status={
                "currentReplicas": 3,
                "updatedReplicas": 3,
                "currentRevision": "orders-db-7b8c9d6f4",
                "updateRevision": "orders-db-7b8c9d6f4",
                "availableReplicas": 2,
            },
        ),
        PROGRESSING,
        "Waiting for 1 pods to be available...",
        id="min-ready-seconds-pending",
    ),
    pytest.param(
        merged(STATEFULSET, status={"availableReplicas": None}),
        COMPLETE,
        "statefulset rolling update complete 3 pods at revision orders-db-6d5f8c7b9...",
        id="older-api-without-available",
    ),
    pytest.param(
        merged(STATEFULSET, spec={"updateStrategy": {"type": "OnDelete"}}),
        FAILED,
        'statefulset "orders-db" uses the OnDelete update strategy: a restart does not replace its pods, '
        "so they would keep the old credential",
        id="on-delete",
    ),
    pytest.param(
        merged(
            STATEFULSET, spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}
        ),
        FAILED,
        'statefulset "orders-db" has rollingUpdate.partition=2: pods with an ordinal below 2 are not '
        "restarted, so they would keep the old credential",
        id="partitioned",
    ),
    pytest.param(
        merged(STATEFULSET, spec={"updateStrategy": None}),
        COMPLETE,
        "statefulset rolling update complete 3 pods at revision orders-db-6d5f8c7b9...",
        id="strategy-defaults-to-rolling-update",
    ),
]


@pytest.mark.parametrize(("obj", "state", "message"), STATEFULSET_CASES)
def test_statefulset(obj: dict[str, Any], state: RolloutState, message: str) -> None:
    assert rollout_health("StatefulSet", obj) == RolloutHealth(state, message)


# --- DaemonSet --------------------------------------------------------------------------------

DAEMONSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {
        "name": "log-shipper",
        "namespace": "shop",
        "uid": "a3e0c7d2-1b9f-4c55-8f0e-9d2b6c4a1f03",
        "resourceVersion": "50877",
        "generation": 2,
        "creationTimestamp": "2026-11-20T09:12:44Z",
        "annotations": {"deprecated.daemonset.template.generation": "2"},
    },
    "spec": {
        "selector": {"matchLabels": {"app": "log-shipper"}},
        "template": POD_TEMPLATE,
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "revisionHistoryLimit": 10,
    },
    "status": {
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 3,
        "numberReady": 3,
        "observedGeneration": 2,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
    },
}

DAEMONSET_CASES = [
    pytest.param(DAEMONSET, COMPLETE, 'daemon set "log-shipper" successfully rolled out', id="complete"),
    pytest.param(
        merged(DAEMONSET, metadata={"generation": 3}),
        PROGRESSING,
        "Waiting for daemon set spec update to be observed...",
        id="restart-not-yet-observed",
    ),
    pytest.param(
        merged(
            DAEMONSET,
            status={
                "updatedNumberScheduled": 1,
                "numberReady": 2,
                "numberAvailable": 2,
                "numberUnavailable": 1,
            },
        ),
        PROGRESSING,
        'Waiting for daemon set "log-shipper" rollout to finish: 1 out of 3 new pods have been updated...',
        id="rolling",
    ),
    pytest.param(
        merged(DAEMONSET, status={"numberReady": 2, "numberAvailable": 2, "numberUnavailable": 1}),
        PROGRESSING,
        'Waiting for daemon set "log-shipper" rollout to finish: 2 of 3 updated pods are available...',
        id="updated-not-available",
    ),
    pytest.param(
        merged(DAEMONSET, status={"numberUnavailable": 1}),
        PROGRESSING,
        'Waiting for daemon set "log-shipper" rollout to finish: 1 pods are unavailable...',
        id="inconsistent-snapshot-unavailable",
    ),
    pytest.param(
        merged(DAEMONSET, spec={"updateStrategy": {"type": "OnDelete"}}),
        FAILED,
        'daemon set "log-shipper" uses the OnDelete update strategy: a restart does not replace its pods, '
        "so they would keep the old credential",
        id="on-delete",
    ),
    pytest.param(
        merged(
            DAEMONSET,
            status={
                "currentNumberScheduled": None,
                "desiredNumberScheduled": None,
                "numberReady": None,
                "updatedNumberScheduled": None,
                "numberAvailable": None,
            },
        ),
        COMPLETE,
        'daemon set "log-shipper" successfully rolled out',
        id="no-matching-nodes",
    ),
]


@pytest.mark.parametrize(("obj", "state", "message"), DAEMONSET_CASES)
def test_daemonset(obj: dict[str, Any], state: RolloutState, message: str) -> None:
    assert rollout_health("DaemonSet", obj) == RolloutHealth(state, message)


def test_unsupported_kind() -> None:
    with pytest.raises(ValueError, match="unsupported workload kind 'CronJob'"):
        rollout_health("CronJob", {})


def test_malformed_fields_read_as_absent() -> None:
    """A bool or string where a count belongs must not be taken as a count."""
    obj = merged(DEPLOYMENT, status={"availableReplicas": True, "updatedReplicas": "3"})
    assert rollout_health("Deployment", obj).state is PROGRESSING


def test_helpers() -> None:
    health = rollout_health("Deployment", DEPLOYMENT)
    assert health.complete
    assert not health.failed
    assert health.state == "complete"
    assert rollout_health(
        "DaemonSet", merged(DAEMONSET, spec={"updateStrategy": {"type": "OnDelete"}})
    ).failed
