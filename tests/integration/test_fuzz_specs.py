"""Fuzzing the API and the operator with generated RotationPolicy specs (issue 9 proof).

Hypothesis generates specs around the real schema (crds/rotationpolicies.rotator.dev.yaml):
plausible values and hostile ones - huge and negative numbers, numbers beyond int64, malformed
and overflowing durations, unicode, wrong types, nested junk, missing required fields, fields
nobody knows. Each goes through the API to the emulator with the operator running, and is
either refused with a 422 whose message names a ``spec.`` field, or accepted and given a
condition (Ready or Rotating) by its first reconcile. At the end the operator log holds no
traceback and the operator process never exited.

Derandomized (``derandomize=True``, no example database): CI runs the same specs every time.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rotator.kube import KubeError, policy_path
from tests.fixtures.figures import figure
from tests.fixtures.rotation import NAMESPACE, Bench

EXAMPLES = 320

# --- values, plausible and hostile ---------------------------------------------------------------

JUNK: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)

INTEGERS = st.one_of(
    st.sampled_from([16, 32, 256, 15, 257, 0, -1, 1, 50, 51, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
)

DURATIONS = st.one_of(
    st.sampled_from(
        [
            "720h",
            "1h30m",
            "45s",
            "0s",
            "1m",
            "59s",
            "10m",
            "24h",
            "24h1ns",
            "720h",
            "721h",
            "87600h",
            "87601h",
            "99999h",
            "100000000h",
            "9999999999h",
            "1.5h",
            "-1h",
            "1d",
            "",
            "1h1h",
            "0.000000001ns",
            "1e3s",
            "720H",
            "\u0661h",  # an Arabic-Indic digit
            "5m0s",
            "999999999999999999ns",
            "9223372036854775807ns",
            "1" * 64 + "h",
        ]
    ),
    st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,12})?(ns|us|µs|ms|s|m|h)", fullmatch=True),
    st.text(max_size=70),
)

CRONS = st.one_of(
    st.sampled_from(
        [
            "0 3 * * 0",
            "*/5 * * * *",
            "0 0 31 2 *",
            "60 * * * *",
            "* * * *",
            "a b c d e",
            "0 3 * * SUN",
            "0 0 * * * *",
            "@daily",
            "0 3 * * 8",
            "1-2/0 * * * *",
        ]
    ),
    st.text(max_size=40),
)

DNS_NAMES = st.one_of(
    st.sampled_from(
        ["db", "orders-db-credentials", "a.b", "demo-db-credentials", "x" * 253, "x" * 254, "A", "-a", ""]
    ),
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True),
    st.text(max_size=30),
)

KEYS = st.one_of(
    st.sampled_from(["password", "token", "password.previous", "a b", "", "ключ"]), st.text(max_size=12)
)

PATHS = st.one_of(
    st.sampled_from(
        [
            "db",
            "orders/db",
            "../sys/policy",
            ".",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "x.rotator-pending",
            "a/b.rotator-pending/c",
            "a" * 513,
            "a" * 512,
            "ünïcode",
            "a b",
            "...",
        ]
    ),
    st.from_regex(r"[A-Za-z0-9_-]{1,10}(/[A-Za-z0-9._-]{1,10}){0,3}", fullmatch=True),
    st.text(max_size=40),
)


def either(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[Any]:
    """Mostly plausible, sometimes hostile for the type, sometimes anything at all."""
    return st.one_of(valid, valid, valid, hostile if hostile is not None else valid, JUNK)


def some_of(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]) -> Any:
    """An object with the required keys (each dropped now and then) and some optional ones."""
    return st.tuples(
        st.fixed_dictionaries(required, optional=optional),
        st.sets(st.sampled_from(sorted(required) or ["-"]), max_size=1),
        st.booleans(),
    ).map(lambda t: {k: v for k, v in t[0].items() if k not in t[1] or t[2]})


SECRET = some_of(
    {"name": either(DNS_NAMES)},
    {
        "key": either(KEYS),
        "previousKey": either(KEYS),
        "deletionPolicy": either(st.sampled_from(["Retain", "Delete"]), st.text(max_size=10)),
    },
)
CREDENTIAL = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "password": either(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "length": either(st.integers(16, 256), INTEGERS),
                        "alphabet": either(
                            st.sampled_from(["alphanumeric", "ascii-printable", "hex"]), st.text(max_size=20)
                        ),
                    },
                )
            ),
            "vaultDatabase": JUNK,
        },
    ),
    JUNK,
)
STORE_REF = either(
    some_of(
        {"name": either(st.sampled_from(["vault", "vault", "missing", "other"]), DNS_NAMES)},
        {"kind": either(st.sampled_from(["RotationStore", "ClusterRotationStore"]), st.text(max_size=20))},
    )
)
SCHEDULE = either(
    st.fixed_dictionaries(
        {},
        optional={
            "interval": either(DURATIONS),
            "cron": either(CRONS),
            "maxAge": either(DURATIONS),
            "jitter": either(DURATIONS),
        },
    )
)
TARGET = either(
    some_of(
        {
            "kind": either(st.sampled_from(["Deployment", "StatefulSet", "DaemonSet"]), st.text(max_size=12)),
            "name": either(st.sampled_from(["demo-app", "missing"]), DNS_NAMES),
        },
        {},
    )
)
RESTART = either(
    st.fixed_dictionaries(
        {},
        optional={
            "targets": either(st.lists(TARGET, max_size=4), st.lists(TARGET, min_size=51, max_size=52)),
            "auto": either(st.booleans()),
            "maxConcurrent": either(st.integers(1, 50), INTEGERS),
        },
    )
)
HOSTILE = some_of(
    {
        "secret": SECRET,
        "credential": CREDENTIAL,
        "storeRef": STORE_REF,
        "path": either(PATHS),
    },
    {
        "schedule": SCHEDULE,
        "restart": RESTART,
        "verify": either(st.fixed_dictionaries({}, optional={"timeout": either(DURATIONS)})),
        "revoke": either(st.fixed_dictionaries({}, optional={"gracePeriod": either(DURATIONS)})),
        "adopt": either(st.booleans()),
        "suspend": either(st.booleans()),
        "dryRun": either(st.booleans()),
        "fromTheFuture": JUNK,
    },
)


# --- plausible specs, and plausible specs with one hostile field ----------------------------------

VALID_DURATIONS = st.one_of(
    st.sampled_from(["720h", "1h30m", "45s", "0s", "10m", "24h", "1.5h", "5m0s", "87600h", "2h45m30s"]),
    st.from_regex(r"[1-9][0-9]{0,2}(h|m|s)", fullmatch=True),
)
#: Replaced by a name of the policy's own (Secret name, store path), so that plausible policies do
#: not all collide on the few names Hypothesis favours, and many really rotate.
UNIQUE = st.just("<unique>")
VALID = st.fixed_dictionaries(
    {
        "secret": st.fixed_dictionaries(
            {
                "name": st.one_of(
                    UNIQUE, UNIQUE, st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
                )
            },
            optional={
                "key": st.sampled_from(["password", "token"]),
                "previousKey": st.sampled_from(["password.previous", "old"]),
                "deletionPolicy": st.sampled_from(["Retain", "Delete"]),
            },
        ),
        "credential": st.fixed_dictionaries(
            {"password": st.fixed_dictionaries({}, optional={"length": st.integers(16, 256)})}
        ),
        "storeRef": st.fixed_dictionaries(
            {"name": st.sampled_from(["vault", "vault", "vault", "missing"])},
            optional={"kind": st.sampled_from(["RotationStore", "ClusterRotationStore"])},
        ),
        "path": st.one_of(
            UNIQUE, st.from_regex(r"[A-Za-z0-9_-]{1,10}(/[A-Za-z0-9_-]{1,10}){0,2}", fullmatch=True)
        ),
    },
    optional={
        "schedule": st.one_of(
            st.fixed_dictionaries({}, optional={"interval": VALID_DURATIONS, "maxAge": VALID_DURATIONS}),
            st.fixed_dictionaries({"cron": st.sampled_from(["0 3 * * 0", "*/5 * * * *", "0 0 31 2 *"])}),
        ),
        "restart": st.fixed_dictionaries(
            {},
            optional={
                "targets": st.lists(
                    st.fixed_dictionaries(
                        {
                            "kind": st.sampled_from(["Deployment", "StatefulSet"]),
                            "name": st.sampled_from(["demo-app", "missing"]),
                        }
                    ),
                    max_size=1,
                ),
                "auto": st.booleans(),
                "maxConcurrent": st.integers(1, 50),
            },
        ),
        "verify": st.fixed_dictionaries({}, optional={"timeout": VALID_DURATIONS}),
        "revoke": st.fixed_dictionaries({}, optional={"gracePeriod": VALID_DURATIONS}),
        "adopt": st.booleans(),
        "suspend": st.booleans(),
        "dryRun": st.booleans(),
    },
)

#: Where a single hostile value goes into an otherwise plausible spec, and what it is.
MUTATIONS: list[tuple[tuple[str, ...], st.SearchStrategy[Any]]] = [
    (("secret", "name"), DNS_NAMES),
    (("secret", "key"), KEYS),
    (("secret", "previousKey"), st.just("password")),
    (("credential", "password", "length"), INTEGERS),
    (("credential", "password", "alphabet"), st.text(max_size=20)),
    (("credential",), JUNK),
    (("storeRef", "name"), DNS_NAMES),
    (("storeRef", "kind"), st.text(max_size=20)),
    (("path",), PATHS),
    (("schedule", "interval"), DURATIONS),
    (("schedule", "maxAge"), DURATIONS),
    (("schedule", "jitter"), DURATIONS),
    (("schedule", "cron"), CRONS),
    (("restart", "maxConcurrent"), INTEGERS),
    (("restart", "auto"), JUNK),
    (("restart", "targets"), st.lists(TARGET, max_size=3)),
    (("verify", "timeout"), DURATIONS),
    (("revoke", "gracePeriod"), DURATIONS),
    (("suspend",), JUNK),
    (("fromTheFuture",), JUNK),
    (("secret",), JUNK),
]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(VALID)
    where, values = draw(st.sampled_from(MUTATIONS))
    node: Any = spec
    for key in where[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[where[-1]] = draw(values)
    return spec


SPECS = st.one_of(VALID, mutated(), HOSTILE)


def has_condition(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Ready", "Rotating") for c in conditions)


# 320 specs through one operator: beside other xdist workers on 2 cores it needs more than the
# suite's default 300 s.
@pytest.mark.timeout(900)
@pytest.mark.long(seconds=30)
def test_generated_specs_are_refused_by_field_or_get_a_condition_and_never_crash_the_operator(
    bench: Bench,
) -> None:
    bench.seed(create_policy=False)
    bench.operator.start()
    bench.operator.wait_healthy()
    refused: dict[str, str] = {}
    accepted: dict[str, float] = {}  # name -> when it was created
    bad_refusals: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(SPECS)
    def send(spec: dict[str, Any]) -> None:
        name = f"fuzz-{len(refused) + len(accepted) + len(bad_refusals):03d}"
        secret = spec.get("secret")
        if isinstance(secret, dict) and secret.get("name") == "<unique>":
            secret["name"] = f"{name}-credentials"
        if spec.get("path") == "<unique>":
            spec["path"] = f"fuzz/{name}"
        body = {
            "apiVersion": "rotator.dev/v1alpha1",
            "kind": "RotationPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        try:
            bench.kube.create(policy_path(NAMESPACE), body)
        except KubeError as exc:
            if exc.status == 422 and "spec." in str(exc):
                refused[name] = str(exc)
            else:
                bad_refusals.append(f"{name}: {exc} for spec {spec!r:.300}")
            return
        accepted[name] = time.monotonic()

    started = time.monotonic()
    send()
    sent = time.monotonic() - started
    assert not bad_refusals, bad_refusals[:5]
    assert len(refused) + len(accepted) >= 300

    # Each accepted policy gets its condition from its first reconcile: poll them all.
    waiting = set(accepted)
    latency: list[float] = []
    deadline = time.monotonic() + 90
    without: list[str] = []
    while waiting and time.monotonic() < deadline:
        items = {o["metadata"]["name"]: o for o in bench.kube.list(policy_path(NAMESPACE))}
        for name in sorted(waiting):
            obj = items.get(name, {})
            if has_condition(obj):
                waiting.discard(name)
                latency.append(time.monotonic() - accepted[name])
            elif obj.get("status"):
                without.append(f"{name}: status without Ready/Rotating: {obj['status']!r:.300}")
        time.sleep(0.2)
    assert not without, without[:5]
    assert not waiting, f"{len(waiting)} accepted policies never got a condition: {sorted(waiting)[:10]}"

    time.sleep(2)  # what the first reconciles started (rotations, refusals) runs on a little
    assert bench.operator.alive(), "the operator exited"
    log = bench.operator.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 : log.index("Traceback") + 3000]

    reasons = Counter(
        next(c["reason"] for c in (o.get("status") or {}).get("conditions") or [] if c["type"] == "Ready")
        for o in bench.kube.list(policy_path(NAMESPACE))
        if any(c["type"] == "Ready" for c in (o.get("status") or {}).get("conditions") or [])
    )
    fields = Counter(
        message.split("spec.", 1)[1].split(":", 1)[0].split(" ", 1)[0] for message in refused.values()
    )
    ordered = sorted(latency) or [0.0]
    figure(
        f"fuzz: {len(refused) + len(accepted)} specs sent in {sent:.1f} s: {len(refused)} refused "
        f"(422), {len(accepted)} accepted; first condition after median "
        f"{ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s"
        f"\n  refused fields: {dict(fields.most_common(12))}"
        f"\n  Ready reasons: {dict(reasons.most_common())}"
    )
    assert len(refused) >= 50, "the generator hardly tried anything hostile"
    assert len(accepted) >= 30, "the generator hardly tried anything plausible"
