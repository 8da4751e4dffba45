"""Decoding Kubernetes protobuf request bodies (rotator.sandbox.kube_protobuf).

What kubectl really sends is exercised in test_kube_kubectl.py (create secret/configmap/
namespace/serviceaccount/token) and against kube-apiserver in tests/realkube. Here the bodies
are built with a minimal protobuf encoder, for the edges kubectl does not reach.
"""

from __future__ import annotations

import pytest

from rotator.sandbox.kube_protobuf import MAGIC, UnsupportedProtobuf, decode


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    body = field(1, type_meta) + field(2, raw) + (field(3, encoding) if encoding else b"")
    return MAGIC + body


def entry(key: str, value: bytes | str) -> bytes:
    return field(1, key) + field(2, value)


def test_a_secret_as_kubectl_would_send_it() -> None:
    metadata = (
        field(1, "creds")
        + field(3, "shop")
        + field(8, b"")  # creationTimestamp: the zero time, always sent by Go
        + field(11, entry("team", "shop"))
        + field(7, 0)  # generation 0: omitted, as JSON omitempty omits it
        + field(10, 0)  # deletionGracePeriodSeconds 0: a pointer, kept
        + field(99, "future field")  # unknown to this subset: ignored
    )
    raw = field(1, metadata) + field(2, entry("a", b"\x00\xff")) + field(3, "Opaque") + field(5, 0)
    assert decode(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "shop",
            "labels": {"team": "shop"},
            "deletionGracePeriodSeconds": 0,
        },
        "data": {"a": "AP8="},
        "type": "Opaque",
        "immutable": False,
    }


def test_timestamps_negative_ints_and_nested_lists() -> None:
    time = field(1, 1_800_000_000) + field(2, 5)
    bound = field(1, "Pod") + field(3, "web-0")
    spec = field(1, "vault") + field(1, "sts") + field(4, -1) + field(3, bound)
    raw = field(1, field(1, "robot") + field(8, time)) + field(2, spec)
    decoded = decode(envelope("authentication.k8s.io/v1", "TokenRequest", raw))
    assert decoded["metadata"] == {"name": "robot", "creationTimestamp": "2027-01-15T08:00:00Z"}
    assert decoded["spec"] == {
        "audiences": ["vault", "sts"],
        "expirationSeconds": -1,
        "boundObjectRef": {"kind": "Pod", "name": "web-0"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Secret"}', "lacks the k8s"),
        (envelope("apps/v1", "Deployment", b""), "not Deployment (apps/v1)"),
        (envelope("rotator.dev/v1alpha1", "RotationPolicy", b""), "not RotationPolicy"),
        (envelope("v1", "Secret", b"", encoding="gzip"), "content encoding 'gzip'"),
        (MAGIC + b"\x0a\xff", "truncated varint"),
        (MAGIC + b"\x0a\x05ab", "truncated field"),
        (MAGIC + b"\x0b", "unsupported wire type 3"),
        (MAGIC + varint(1 << 3 | 0) + b"\xff" * 10 + b"\x01", "longer than 64 bits"),
        (envelope("v1", "Secret", field(3, 7)), "a string field is not length-delimited"),
        (envelope("v1", "Secret", field(1, field(7, "x"))), "an integer field is not a varint"),
    ],
)
def test_unreadable_bodies_are_refused_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(UnsupportedProtobuf, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(body)


def test_fixed_width_fields_are_skipped() -> None:
    raw = field(3, "Opaque") + varint(9 << 3 | 1) + b"\x00" * 8 + varint(9 << 3 | 5) + b"\x00" * 4
    assert decode(envelope("v1", "Secret", raw))["type"] == "Opaque"
