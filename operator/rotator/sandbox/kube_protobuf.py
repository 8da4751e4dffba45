"""Request bodies in Kubernetes protobuf (``application/vnd.kubernetes.protobuf``), decoded to JSON.

kubectl's typed commands (``create secret``, ``create configmap``, ``create namespace``,
``create serviceaccount``, ``create token``) send their body as protobuf and accept protobuf or
JSON back. kube-apiserver accepts protobuf for every built-in kind, and client-go falls back to
JSON after a 415 only for CBOR, never for protobuf: a server refusing it makes those commands
fail (``rest/request.go``: ``UnsupportedMediaType`` is honoured for CBOR alone). So the
emulator must read protobuf; it answers JSON, which kubectl's ``Accept`` lists second.

The envelope (``k8s.io/apimachinery/pkg/runtime/serializer/protobuf``) is the 4-byte magic
``k8s\\0`` and a ``runtime.Unknown`` message: ``typeMeta`` (apiVersion, kind) and ``raw``, the
typed object's own protobuf. The typed messages below carry the field numbers of
``k8s.io/api/*/generated.proto`` and ``apimachinery/pkg/apis/meta/v1/generated.proto``
(v0.36), for the kinds kubectl creates from flags; any other kind is refused with 415, as
kube-apiserver refuses protobuf for custom resources.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"

JSON = dict[str, Any]


class UnsupportedProtobuf(ValueError):
    """A body that is not the protobuf of a kind this emulator can read (answered 415)."""


@dataclass(frozen=True)
class Field:
    """One message field: its JSON name, value type, and shape.

    ``type`` is ``string``, ``bytes`` (base64 in JSON), ``bool``, ``int``, ``time``
    (``metav1.Time``) or a message name. ``pointer`` fields (Go ``*T``) are kept at their zero
    value, others are dropped there as ``omitempty`` drops them from JSON.
    """

    name: str
    type: str
    repeated: bool = False
    map_value: str | None = None  # map<string, map_value>
    pointer: bool = False


F = Field

MESSAGES: dict[str, dict[int, Field]] = {
    "ObjectMeta": {
        1: F("name", "string"),
        2: F("generateName", "string"),
        3: F("namespace", "string"),
        4: F("selfLink", "string"),
        5: F("uid", "string"),
        6: F("resourceVersion", "string"),
        7: F("generation", "int"),
        8: F("creationTimestamp", "time"),
        9: F("deletionTimestamp", "time"),
        10: F("deletionGracePeriodSeconds", "int", pointer=True),
        11: F("labels", "string", map_value="string"),
        12: F("annotations", "string", map_value="string"),
        13: F("ownerReferences", "OwnerReference", repeated=True),
        14: F("finalizers", "string", repeated=True),
    },
    "OwnerReference": {
        1: F("kind", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
        5: F("apiVersion", "string"),
        6: F("controller", "bool", pointer=True),
        7: F("blockOwnerDeletion", "bool", pointer=True),
    },
    "Secret": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "bytes", map_value="bytes"),
        3: F("type", "string"),
        4: F("stringData", "string", map_value="string"),
        5: F("immutable", "bool", pointer=True),
    },
    "ConfigMap": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "string", map_value="string"),
        3: F("binaryData", "bytes", map_value="bytes"),
        4: F("immutable", "bool", pointer=True),
    },
    "Namespace": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "NamespaceSpec"),
        3: F("status", "NamespaceStatus"),
    },
    "NamespaceSpec": {1: F("finalizers", "string", repeated=True)},
    "NamespaceStatus": {1: F("phase", "string")},
    "ServiceAccount": {
        1: F("metadata", "ObjectMeta"),
        2: F("secrets", "ObjectReference", repeated=True),
        3: F("imagePullSecrets", "LocalObjectReference", repeated=True),
        4: F("automountServiceAccountToken", "bool", pointer=True),
    },
    "ObjectReference": {
        1: F("kind", "string"),
        2: F("namespace", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
        5: F("apiVersion", "string"),
        6: F("resourceVersion", "string"),
        7: F("fieldPath", "string"),
    },
    "LocalObjectReference": {1: F("name", "string")},
    "TokenRequest": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "TokenRequestSpec"),
    },
    "TokenRequestSpec": {
        1: F("audiences", "string", repeated=True),
        3: F("boundObjectRef", "BoundObjectReference", pointer=True),
        4: F("expirationSeconds", "int", pointer=True),
    },
    "BoundObjectReference": {
        1: F("kind", "string"),
        2: F("apiVersion", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
    },
    "TypeMeta": {1: F("apiVersion", "string"), 2: F("kind", "string")},
    "Unknown": {
        1: F("typeMeta", "TypeMeta"),
        2: F("raw", "raw"),
        3: F("contentEncoding", "string"),
        4: F("contentType", "string"),
    },
}

KINDS: dict[tuple[str, str], str] = {
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Namespace"): "Namespace",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
}
"""(apiVersion, kind) of the top-level objects this module decodes, to their message."""


def decode(body: bytes) -> JSON:
    """The JSON object a protobuf request body stands for; UnsupportedProtobuf otherwise."""
    if not body.startswith(MAGIC):
        raise UnsupportedProtobuf("the protobuf body lacks the k8s\\0 prefix")
    envelope = _message("Unknown", body[len(MAGIC) :])
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise UnsupportedProtobuf(f"content encoding {envelope['contentEncoding']!r} is not supported")
    message = KINDS.get((api_version, kind))
    if message is None:
        supported = ", ".join(sorted(f"{k} ({v})" for v, k in KINDS))
        hint = "send JSON (kubectl apply -f, or create … --dry-run=client -o yaml | kubectl apply -f -)"
        raise UnsupportedProtobuf(
            f"the emulator reads protobuf only for {supported}, "
            f"not {kind or '?'} ({api_version or '?'}); {hint}"
        )
    return {"apiVersion": api_version, "kind": kind, **_message(message, envelope.get("raw", b""))}


# ---------------------------------------------------------------------------------------------
# the wire format (https://protobuf.dev/programming-guides/encoding/)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise UnsupportedProtobuf("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise UnsupportedProtobuf("varint longer than 64 bits")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: varints as ints, length-delimited fields as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise UnsupportedProtobuf("truncated field")
            value, position = data[position : position + length], position + length
        elif wire_type in (1, 5):  # fixed64 / fixed32: no field here uses them; skip
            size = 8 if wire_type == 1 else 4
            value, position = data[position : position + size], position + size
        else:
            raise UnsupportedProtobuf(f"unsupported wire type {wire_type}")
        fields.append((number, value))
    return fields


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "int":
        if not isinstance(value, int):
            raise UnsupportedProtobuf("an integer field is not a varint")
        return _int64(value)
    if kind == "bool":
        return bool(value)
    if not isinstance(value, bytes):
        raise UnsupportedProtobuf(f"a {kind} field is not length-delimited")
    if kind == "string":
        return value.decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "raw":
        return value
    if kind == "time":
        return _time(value)
    return _message(kind, value)


def _time(data: bytes) -> str | None:
    """metav1.Time: seconds since the epoch (nanoseconds dropped, as its JSON drops them)."""
    seconds = 0
    for number, value in _fields(data):
        if number == 1 and isinstance(value, int):
            seconds = _int64(value)
    if seconds == 0:
        return None  # the zero time: JSON null, omitted
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty(value: Any) -> bool:
    return value is None or value in ("", 0, False) or (isinstance(value, Mapping | list) and not value)


def _message(name: str, data: bytes) -> JSON:
    schema = MESSAGES[name]
    out: JSON = {}
    for number, value in _fields(data):
        spec = schema.get(number)
        if spec is None:
            continue  # a field this subset does not model (managedFields, status): dropped
        if spec.map_value is not None:
            entry = dict(_fields(value if isinstance(value, bytes) else b""))
            key = _scalar("string", entry.get(1, b""))
            out.setdefault(spec.name, {})[key] = _scalar(spec.map_value, entry.get(2, b""))
        elif spec.repeated:
            out.setdefault(spec.name, []).append(_scalar(spec.type, value))
        else:
            out[spec.name] = _scalar(spec.type, value)
    return {
        key: value
        for key, value in out.items()
        if not _empty(value) or next(f for f in schema.values() if f.name == key).pointer
    }
