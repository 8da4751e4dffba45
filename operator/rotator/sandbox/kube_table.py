"""Server-side printing: the ``meta.k8s.io/v1`` Table kube-apiserver answers to ``as=Table``.

``kubectl get`` asks every server for a Table (``Accept: application/json;as=Table;v=v1;
g=meta.k8s.io,…``) and prints the columns it is given, so the columns are the server's to
choose. kube-apiserver builds them

- for a custom resource from its CRD version's ``additionalPrinterColumns`` after a ``Name``
  column, or ``Name`` + ``Age`` when the CRD declares none (apiextensions-apiserver
  ``tableconvertor`` and ``serveDefaultColumnsIfEmpty``); each cell is the first JSONPath match,
  typed by the column: ``date`` cells are ages (``5m``), strings are printed as client-go's
  jsonpath prints them (lists and maps as compact JSON), a missing value is null (``<none>``);
- for built-in kinds with hand-written printers (``pkg/printers/internalversion``); the ones
  the sandbox meets are copied here, the rest get ``Name`` + ``Age``.

Every column is always sent (kubectl hides ``priority`` > 0 unless ``-o wide``). Each row
carries its object as ``includeObject`` asks: ``PartialObjectMetadata`` by default, the whole
object for ``Object``, nothing for ``None``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

AGE_PATH = ".metadata.creationTimestamp"
DEFAULT_CR_COLUMNS: tuple[Mapping[str, Any], ...] = (
    {"name": "Age", "type": "date", "jsonPath": AGE_PATH, "description": "Creation time"},
)
"""What a CRD without ``additionalPrinterColumns`` is served with."""

INCLUDE_OBJECT = ("Object", "Metadata", "None")


class BadTableRequest(ValueError):
    """An ``includeObject`` value kube-apiserver refuses with 400 BadRequest."""


# ---------------------------------------------------------------------------------------------
# ages (k8s.io/apimachinery/pkg/util/duration.HumanDuration)


def human_duration(seconds: float) -> str:
    """How kube-apiserver prints an age: ``45s``, ``3m20s``, ``2h5m``, ``3d4h``, ``2y``."""
    whole = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: datetime.datetime) -> str:
    """An RFC 3339 timestamp's age as a ``date`` cell; ``<unknown>`` for none, as kube says."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(str(timestamp))
    except ValueError:
        return "<invalid>"
    if then.tzinfo is None:
        return "<invalid>"
    return human_duration((now - then).total_seconds())


# ---------------------------------------------------------------------------------------------
# JSONPath, the subset printer columns use (client-go util/jsonpath)

_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)
    | \[\s*(?P<index>-?\d+)\s*\]
    | \[\s*['"](?P<quoted>[^'"]*)['"]\s*\]
    | \[\s*(?P<star>\*)\s*\]
    | \[\s*\?\(\s*@(?P<left>(?:\.[A-Za-z0-9_\-$]+)+)
        \s*(?P<op>==|!=)\s*(?P<right>"[^"]*"|'[^']*'|-?[\d.]+)\s*\)\s*\]
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class JsonPath:
    """A parsed printer-column path such as ``.status.conditions[?(@.type=="Ready")].status``."""

    text: str
    steps: tuple[re.Match[str], ...] | None
    """None: a path beyond this subset, which matches nothing."""

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        steps: list[re.Match[str]] = []
        position = 0
        body = text.strip()
        while position < len(body):
            match = _STEP.match(body, position)
            if match is None:
                raise ValueError(f"unrecognized column definition {text!r}")
            steps.append(match)
            position = match.end()
        return cls(text, tuple(steps))

    def find(self, obj: Any) -> list[Any]:
        """Every match, in order (missing keys are no match, as with ``AllowMissingKeys``)."""
        if self.steps is None:
            return []
        current = [obj]
        for step in self.steps:
            current = [found for value in current for found in _walk(step, value)]
        return current


def _walk(step: re.Match[str], value: Any) -> list[Any]:
    if step["field"] is not None or step["quoted"] is not None:
        key = step["field"] if step["field"] is not None else step["quoted"]
        return [value[key]] if isinstance(value, Mapping) and key in value else []
    if not isinstance(value, list):
        return []
    if step["index"] is not None:
        index = int(step["index"])
        return [value[index]] if -len(value) <= index < len(value) else []
    if step["star"] is not None:
        return list(value)
    left = JsonPath.parse(step["left"])
    right = step["right"]
    wanted: Any = right[1:-1] if right[0] in "\"'" else float(right)
    matches = []
    for item in value:
        found = left.find(item)
        equal = bool(found) and _same(found[0], wanted)
        if equal == (step["op"] == "=="):
            matches.append(item)
    return matches


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value) == wanted
    return bool(value == wanted)


# ---------------------------------------------------------------------------------------------
# cells


def _go_json(value: Any) -> str:
    """encoding/json.Marshal: compact, HTML characters escaped, non-ASCII kept."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _go_text(value: Any) -> str:
    """How client-go's jsonpath prints one value into a ``string`` column."""
    if isinstance(value, Mapping | list):
        return _go_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def column_cell(column_type: str, value: Any, now: datetime.datetime) -> Any:
    """A CRD column's cell for the first JSONPath match (apiextensions ``cellForJSONValue``)."""
    if value is None:
        return None
    if column_type == "string":
        return _go_text(value)
    if column_type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if column_type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        return age(value, now)
    return None


# ---------------------------------------------------------------------------------------------
# columns


Cell = Callable[[JSON, datetime.datetime], Any]


@dataclass(frozen=True)
class Column:
    """One column: its definition as sent to kubectl and how a row's cell is computed."""

    name: str
    type: str
    cell: Cell
    description: str = ""
    format: str = ""
    priority: int = 0

    def definition(self) -> JSON:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME = Column(
    "Name",
    "string",
    lambda obj, _: (obj.get("metadata") or {}).get("name", ""),
    "Name must be unique within a namespace.",
    "name",
)
AGE = Column(
    "Age",
    "string",
    lambda obj, now: age((obj.get("metadata") or {}).get("creationTimestamp"), now),
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def crd_columns(printer_columns: Sequence[Mapping[str, Any]]) -> list[Column]:
    """``Name`` and a CRD version's ``additionalPrinterColumns`` (or the served default)."""
    columns = [NAME]
    for spec in printer_columns or DEFAULT_CR_COLUMNS:
        try:
            path = JsonPath.parse(str(spec["jsonPath"]))
        except ValueError:  # beyond the subset: an empty column rather than a failed `get`
            path = JsonPath(str(spec["jsonPath"]), None)
        column_type = str(spec.get("type", "string"))
        description = str(
            spec.get("description") or f"Custom resource definition column (in JSONPath format): {path.text}"
        )

        def cell(obj: JSON, now: datetime.datetime, path: JsonPath = path, kind: str = column_type) -> Any:
            found = path.find(obj)
            return column_cell(kind, found[0], now) if found else None

        columns.append(
            Column(
                str(spec["name"]),
                column_type,
                cell,
                description,
                str(spec.get("format", "")),
                int(spec.get("priority", 0)),
            )
        )
    return columns


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _pod_ready(obj: JSON, _: datetime.datetime) -> str:
    statuses = _get(obj, "status", "containerStatuses") or []
    total = len(_get(obj, "spec", "containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: JSON, _: datetime.datetime) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    for status in _get(obj, "status", "containerStatuses") or []:
        waiting = _get(status, "state", "waiting", "reason")
        if waiting:
            return str(waiting)
    return str(_get(obj, "status", "reason") or _get(obj, "status", "phase") or "")


def _restarts(obj: JSON, _: datetime.datetime) -> str:
    return str(sum(int(s.get("restartCount", 0)) for s in _get(obj, "status", "containerStatuses") or []))


def _or_none(*path: str) -> Cell:
    return lambda obj, _: _get(obj, *path) or "<none>"


def _count(*path: str) -> Cell:
    return lambda obj, _: len(_get(obj, *path) or {})


def _number(*path: str) -> Cell:
    return lambda obj, _: int(_get(obj, *path) or 0)


def _containers(obj: JSON, _: datetime.datetime) -> str:
    return ",".join(c.get("name", "") for c in _get(obj, "spec", "template", "spec", "containers") or [])


def _images(obj: JSON, _: datetime.datetime) -> str:
    return ",".join(c.get("image", "") for c in _get(obj, "spec", "template", "spec", "containers") or [])


def _selector(obj: JSON, _: datetime.datetime) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _node_selector(obj: JSON, _: datetime.datetime) -> str:
    labels = _get(obj, "spec", "template", "spec", "nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _replicas_ready(obj: JSON, _: datetime.datetime) -> str:
    desired = _get(obj, "spec", "replicas")
    return f"{int(_get(obj, 'status', 'readyReplicas') or 0)}/{1 if desired is None else int(desired)}"


_WORKLOAD_WIDE = [
    Column("Containers", "string", _containers, "Names of each container in the template.", priority=1),
    Column("Images", "string", _images, "Images referenced by each container in the template.", priority=1),
    Column("Selector", "string", _selector, "Label selector for pods.", priority=1),
]

BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Namespace"): [NAME, Column("Status", "string", _or_none("status", "phase")), AGE],
    ("", "Secret"): [
        NAME,
        Column("Type", "string", lambda obj, _: str(obj.get("type") or "")),
        Column("Data", "string", _count("data")),
        AGE,
    ],
    ("", "ConfigMap"): [NAME, Column("Data", "string", _count("data")), AGE],
    ("", "ServiceAccount"): [NAME, AGE],
    ("", "Pod"): [
        NAME,
        Column("Ready", "string", _pod_ready),
        Column("Status", "string", _pod_status),
        Column("Restarts", "string", _restarts),
        AGE,
        Column("IP", "string", _or_none("status", "podIP"), priority=1),
        Column("Node", "string", _or_none("spec", "nodeName"), priority=1),
        Column("Nominated Node", "string", _or_none("status", "nominatedNodeName"), priority=1),
        Column("Readiness Gates", "string", lambda obj, _: "<none>", priority=1),
    ],
    ("apps", "Deployment"): [
        NAME,
        Column("Ready", "string", _replicas_ready),
        Column("Up-to-date", "string", _number("status", "updatedReplicas")),
        Column("Available", "string", _number("status", "availableReplicas")),
        AGE,
        *_WORKLOAD_WIDE,
    ],
    ("apps", "StatefulSet"): [NAME, Column("Ready", "string", _replicas_ready), AGE, *_WORKLOAD_WIDE[:2]],
    ("apps", "DaemonSet"): [
        NAME,
        Column("Desired", "integer", _number("status", "desiredNumberScheduled")),
        Column("Current", "integer", _number("status", "currentNumberScheduled")),
        Column("Ready", "integer", _number("status", "numberReady")),
        Column("Up-to-date", "integer", _number("status", "updatedNumberScheduled")),
        Column("Available", "integer", _number("status", "numberAvailable")),
        Column("Node Selector", "string", _node_selector),
        AGE,
        *_WORKLOAD_WIDE,
    ],
}


# ---------------------------------------------------------------------------------------------
# the Table


def _row_object(obj: JSON, include: str) -> JSON | None:
    if include == "Object":
        return obj
    if include == "None":
        return None
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def as_table(
    payload: JSON, columns: Sequence[Column], now: datetime.datetime, include_object: str = ""
) -> JSON:
    """The Table for an object or a list (a Status, an error, is passed through)."""
    include = include_object or "Metadata"
    if include not in INCLUDE_OBJECT:
        raise BadTableRequest(f"unrecognized includeObject value: {include_object!r}")
    if payload.get("kind") == "Status":
        return payload
    items = payload.get("items", [payload])
    metadata = {"resourceVersion": (payload.get("metadata") or {}).get("resourceVersion", "")}
    if (payload.get("metadata") or {}).get("continue"):
        metadata["continue"] = payload["metadata"]["continue"]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [column.definition() for column in columns],
        "rows": [
            {"cells": [column.cell(item, now) for column in columns], "object": _row_object(item, include)}
            for item in items
        ],
    }


def columns_for(group: str, kind: str, printer_columns: Sequence[Mapping[str, Any]] | None) -> list[Column]:
    """A custom resource's columns (``printer_columns`` is not None), or a built-in kind's."""
    if printer_columns is not None:
        return crd_columns(printer_columns)
    return BUILTIN_COLUMNS.get((group, kind), [NAME, AGE])
