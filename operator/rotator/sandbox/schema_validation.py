"""Validate custom resources against a CRD schema the way kube-apiserver does.

The sandbox's Kubernetes emulator calls this so that a bad RotationPolicy is refused with the same
``422 Invalid`` (same field paths, same wording) a real cluster would give: tests then exercise the
CRD we ship, not a second copy of its rules. The order kube applies on a write is
:func:`admit`: prune unknown fields, apply defaults, validate (structural schema first, then
``x-kubernetes-validations`` CEL rules unless a "blocking" error makes them meaningless).

Deliberately not emulated: CEL cost budgets, property-name escaping in CEL, transition rules
(``oldSelf``: there is no old object on create, so they are skipped), embedded resources and
ObjectMeta beyond the name rules. Patterns use Python's ``re`` (our CRD only uses the RE2 subset).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, cast

import celpy
import durationpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from rotator.json_copy import clone

__all__ = [
    "ErrorType",
    "FieldError",
    "admit",
    "apply_defaults",
    "format_status_message",
    "prune",
    "status_body",
    "unknown_fields",
    "validate",
]

Schema = Mapping[str, Any]


class ErrorType(StrEnum):
    """k8s.io/apimachinery field.ErrorType values (they appear as ``reason`` in Status causes)."""

    REQUIRED = "FieldValueRequired"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    TYPE_INVALID = "FieldValueTypeInvalid"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    DUPLICATE = "FieldValueDuplicate"


# Human prefix kube prints for each type (field.ErrorType.String()).
_TYPE_TEXT: dict[str, str] = {
    ErrorType.REQUIRED: "Required value",
    ErrorType.INVALID: "Invalid value",
    ErrorType.NOT_SUPPORTED: "Unsupported value",
    ErrorType.TYPE_INVALID: "Invalid value",
    ErrorType.FORBIDDEN: "Forbidden",
    ErrorType.TOO_LONG: "Too long",
    ErrorType.TOO_MANY: "Too many",
    ErrorType.DUPLICATE: "Duplicate value",
}
# Types whose body never shows the value (field.Error.ErrorBody).
_NO_VALUE = {ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG}
# hasBlockingErr in apiextensions' strategy: with any of these, CEL rules are not run because
# they would see a value of the wrong shape.
_BLOCKING = {
    ErrorType.NOT_SUPPORTED,
    ErrorType.REQUIRED,
    ErrorType.TOO_LONG,
    ErrorType.TOO_MANY,
    ErrorType.TYPE_INVALID,
}
_RULES_SKIPPED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: ``field`` is the path as kube prints it (``spec.a.b[0].c``)."""

    field: str
    type: str
    detail: str
    bad_value: object = None

    def body(self) -> str:
        """The part after ``field: `` (field.Error.ErrorBody)."""
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _NO_VALUE:
            text = f"{text}: {_go_value(self.bad_value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field or '<nil>'}: {self.body()}"


def _go_value(value: object) -> str:
    """Print a bad value as Go's field.Error does (%q for strings, %v for scalars)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))}:{_go_value(v)}" for k, v in sorted(value.items()))
        return f"map[string]interface {{}}{{{items}}}"
    return json.dumps(value, ensure_ascii=False, default=str)


def format_status_message(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> str:
    """kube-apiserver's NewInvalid message: one error bare, several in brackets, duplicates once."""
    qualified = f"{kind}.{group}" if group else kind
    head = f"{qualified} {json.dumps(name)} is invalid"
    messages = list(dict.fromkeys(str(e) for e in errors))
    if not messages:
        return head
    if len(messages) == 1:
        return f"{head}: {messages[0]}"
    return f"{head}: [{', '.join(messages)}]"


def status_body(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> dict[str, Any]:
    """The full ``422`` Status object a client (kubectl, kopf) receives."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format_status_message(kind, group, name, errors),
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors],
        },
        "code": 422,
    }


# ---------------------------------------------------------------------------------------------
# paths


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _entry(path: str, key: str) -> str:
    """A map entry (additionalProperties) as OpenAPI validation and pruning name it: like a
    property (kube-openapi's object validator and the pruner both append ``.key``)."""
    return _child(path, key)


def _key(path: str, key: str) -> str:
    """A map entry as CEL validation names it (``field.Path.Key``: ``path[key]``)."""
    return f"{path}[{key}]"


def _props(schema: Schema) -> Mapping[str, Schema]:
    return cast(Mapping[str, Schema], schema.get("properties") or {})


def _additional(schema: Schema) -> Schema | None:
    extra = schema.get("additionalProperties")
    return cast(Schema, extra) if isinstance(extra, Mapping) else None


def _preserves(schema: Schema) -> bool:
    return (
        bool(schema.get("x-kubernetes-preserve-unknown-fields")) or schema.get("additionalProperties") is True
    )


# Top-level fields kube never prunes or validates against the schema (metadata has its own rules).
_ROOT_KEEP = ("apiVersion", "kind", "metadata")


# ---------------------------------------------------------------------------------------------
# pruning


def prune(schema: Schema, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``obj`` without the fields the schema does not declare (kube prunes them
    silently instead of rejecting them), honouring ``x-kubernetes-preserve-unknown-fields``."""
    return cast(dict[str, Any], _prune(schema, clone(dict(obj)), "", [], root=True))


def unknown_fields(schema: Schema, obj: Mapping[str, Any]) -> list[str]:
    """Paths pruning would drop: kube answers them as warnings (``unknown field "spec.x"``)."""
    dropped: list[str] = []
    _prune(schema, clone(dict(obj)), "", dropped, root=True)
    return dropped


def _prune(schema: Schema, value: Any, path: str, dropped: list[str], root: bool = False) -> Any:
    if isinstance(value, dict):
        props = _props(schema)
        extra = _additional(schema)
        for key in list(value):
            if root and key in _ROOT_KEEP:
                continue
            if key in props:
                value[key] = _prune(props[key], value[key], _child(path, key), dropped)
            elif extra is not None:
                value[key] = _prune(extra, value[key], _entry(path, key), dropped)
            elif not _preserves(schema):
                dropped.append(_child(path, key))
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = cast(Schema, schema["items"])
        value[:] = [_prune(items, v, _index(path, i), dropped) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------------------------------------
# defaulting


def apply_defaults(schema: Schema, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``obj`` with schema defaults applied as kube does: a missing property, or a
    null one that is not nullable, gets its default (deep-copied, then defaulted itself); a null
    that is neither nullable nor defaulted is dropped."""
    return cast(dict[str, Any], _default(schema, clone(dict(obj))))


def _default(schema: Schema, value: Any) -> Any:
    if isinstance(value, dict):
        props = _props(schema)
        for key, prop in props.items():
            current = value.get(key, _MISSING)
            non_nullable_null = current is None and not prop.get("nullable")
            if "default" in prop and (current is _MISSING or non_nullable_null):
                value[key] = clone(prop["default"])
            elif non_nullable_null:
                del value[key]
        for key in list(value):
            if key in props:
                value[key] = _default(props[key], value[key])
            elif (extra := _additional(schema)) is not None:
                value[key] = _default(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = cast(Schema, schema["items"])
        value[:] = [_default(items, v) for v in value]
    return value


#: A key absent from a dict, told apart from a null value: no default applied yet; no old value
#: at a path on an update (a create, a new field, a list item), so nothing to ratchet against.
_MISSING: Any = object()


# ---------------------------------------------------------------------------------------------
# structural validation


def admit(
    schema: Schema, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None, *, owned: bool = False
) -> tuple[dict[str, Any], list[FieldError]]:
    """What kube does to a create/update body: prune, default, validate (ratcheting against
    ``old``, the stored object an update replaces). Returns the object that would be stored and
    the errors (empty when accepted). ``owned``: ``obj`` is the caller's to give away (the
    emulator's own copy of a request body), pruned and defaulted in place instead of copied."""
    # One copy at most, pruned then defaulted in place (prune and apply_defaults each copy).
    mine = cast(dict[str, Any], obj) if owned else clone(dict(obj))
    # A part equal to the stored object's (spec, on a status write) was pruned and defaulted
    # when it was stored, and both are idempotent: set aside, not walked again.
    order = list(mine)
    unchanged = {
        part: mine.pop(part)
        for part in _SPARED_PARTS
        if old is not None and part in mine and part in old and mine[part] == old[part]
    }
    stored = cast(dict[str, Any], _default(schema, _prune(schema, mine, "", [], root=True)))
    if unchanged:  # back in their places, over any default given meanwhile
        rest = stored
        stored = {
            key: unchanged[key] if key in unchanged else rest[key]
            for key in order
            if key in unchanged or key in rest
        }
        stored.update((key, value) for key, value in rest.items() if key not in stored)
    return stored, validate(schema, stored, old)


_SPARED_PARTS: Final = ("spec", "status")


def validate(
    schema: Schema, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[FieldError]:
    """All errors kube-apiserver would report for ``obj`` (already pruned and defaulted).

    Structural errors come first; CEL rules run only when none of them is blocking, exactly as
    apiextensions' strategy does, otherwise a single "rules were not checked" error is added.

    On an update, a value equal to the old object's at the same path is not validated again
    (kube's CRD validation ratcheting, on by default since 1.30): a status write leaves spec
    alone, and re-checking it was most of the emulator's time in a mass rotation. Python's
    equality takes ``1`` and ``true`` as equal; nobody flips a field between them in place.
    """
    errors: list[FieldError] = []
    before: Any = _MISSING if old is None else old
    if isinstance(obj, Mapping) and "metadata" in obj:
        errors.extend(_validate_metadata(obj["metadata"]))
    _check(schema, obj, "", errors, root=True, old=before)
    if any(e.type in _BLOCKING for e in errors):
        errors.append(FieldError("", ErrorType.INVALID, _RULES_SKIPPED, None))
    else:
        _check_rules(schema, obj, "", errors, root=True, old=before)
    return errors


def _old_child(old: Any, key: str) -> Any:
    return old.get(key, _MISSING) if isinstance(old, Mapping) else _MISSING


_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _validate_metadata(meta: Any) -> list[FieldError]:
    """Only the name rules of ObjectMeta: enough for the operator's tests, not a full copy."""
    if not isinstance(meta, Mapping):
        return [FieldError("metadata", ErrorType.TYPE_INVALID, "must be an object", meta)]
    name = meta.get("name")
    if not name:
        if meta.get("generateName"):
            return []
        return [FieldError("metadata.name", ErrorType.REQUIRED, "name or generateName is required")]
    if not isinstance(name, str):
        return [FieldError("metadata.name", ErrorType.TYPE_INVALID, "must be a string", name)]
    errors: list[FieldError] = []
    if len(name) > 253:
        errors.append(
            FieldError("metadata.name", ErrorType.INVALID, "must be no more than 253 characters", name)
        )
    if not _DNS1123_SUBDOMAIN.match(name):
        errors.append(FieldError("metadata.name", ErrorType.INVALID, _DNS1123_MSG, name))
    return errors


def _json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):  # an integral float is an integer only within ±2**53 (go-openapi)
        return "integer" if value.is_integer() and abs(value) <= 2**53 else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _type_ok(expected: str, value: Any, schema: Schema) -> bool:
    actual = _json_type(value)
    if schema.get("x-kubernetes-int-or-string"):
        return actual in ("integer", "string")
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _check(
    schema: Schema, value: Any, path: str, errors: list[FieldError], root: bool = False, old: Any = _MISSING
) -> None:
    """OpenAPI v3 keyword checks, with kube-openapi's wording ("<path> in body should ...")."""
    if old is not _MISSING and value == old:
        return
    name = path or "body"
    expected = schema.get("type")
    if value is None:
        if not schema.get("nullable") and expected:
            errors.append(
                FieldError(path, ErrorType.TYPE_INVALID, f'{name} in body must be of type {expected}: "null"')
            )
        return
    if expected and not _type_ok(str(expected), value, schema):
        actual = _json_type(value)
        detail = f'{name} in body must be of type {expected}: "{actual}"'
        errors.append(FieldError(path, ErrorType.TYPE_INVALID, detail, actual))
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_go_value(v) if isinstance(v, str) else json.dumps(v) for v in schema["enum"])
        errors.append(FieldError(path, ErrorType.NOT_SUPPORTED, f"supported values: {supported}", value))
    if isinstance(value, str):
        _check_string(schema, value, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path, errors)
    elif isinstance(value, list):
        _check_array(schema, value, path, errors)
    elif isinstance(value, Mapping):
        _check_object(schema, value, path, errors, root, old)


def _check_string(schema: Schema, value: str, path: str, errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        detail = f"may not be more than {schema['maxLength']} bytes"
        errors.append(FieldError(path, ErrorType.TOO_LONG, detail, value))
    if "minLength" in schema and len(value) < schema["minLength"]:
        detail = f"{path} in body should be at least {schema['minLength']} chars long"
        errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        detail = f"{path} in body should match '{schema['pattern']}'"
        errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    fmt = schema.get("format")
    if fmt in _FORMATS and not _FORMATS[fmt](value):
        detail = f'{path} in body must be of type {fmt}: "{value}"'
        errors.append(FieldError(path, ErrorType.TYPE_INVALID, detail, value))


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def _is_date_time(text: str) -> bool:
    if not _RFC3339.match(text):
        return False
    try:
        dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


_FORMATS = {"date-time": _is_date_time, "date": _is_date}


def _check_number(schema: Schema, value: float, path: str, errors: list[FieldError]) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            detail = f"{path} in body should be greater than {low}"
            errors.append(FieldError(path, ErrorType.INVALID, detail, value))
        elif value < low:
            detail = f"{path} in body should be greater than or equal to {low}"
            errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            detail = f"{path} in body should be less than {high}"
            errors.append(FieldError(path, ErrorType.INVALID, detail, value))
        elif value > high:
            detail = f"{path} in body should be less than or equal to {high}"
            errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    if "multipleOf" in schema and value % schema["multipleOf"] != 0:
        detail = f"{path} in body should be a multiple of {schema['multipleOf']}"
        errors.append(FieldError(path, ErrorType.INVALID, detail, value))


def _check_array(schema: Schema, value: list[Any], path: str, errors: list[FieldError]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"must have at most {schema['maxItems']} items"
        errors.append(FieldError(path, ErrorType.TOO_MANY, detail, len(value)))
    if "minItems" in schema and len(value) < schema["minItems"]:
        detail = f"{path} in body should have at least {schema['minItems']} items"
        errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _check(items, item, _index(path, i), errors)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type in ("set", "map"):
        _check_unique(schema, value, path, errors, str(list_type))


def _check_unique(schema: Schema, value: list[Any], path: str, errors: list[FieldError], kind: str) -> None:
    """x-kubernetes-list-type set/map: no two items (set) or item keys (map) may be equal."""
    seen: list[Any] = []
    keys = list(schema.get("x-kubernetes-list-map-keys") or [])
    for i, item in enumerate(value):
        if kind == "map":
            if not isinstance(item, Mapping):
                continue
            identity: Any = {k: item.get(k) for k in keys}
        else:
            identity = item
        if identity in seen:
            errors.append(FieldError(_index(path, i), ErrorType.DUPLICATE, "", identity))
        else:
            seen.append(identity)


def _check_object(
    schema: Schema, value: Mapping[str, Any], path: str, errors: list[FieldError], root: bool, old: Any
) -> None:
    for name in schema.get("required") or []:
        if name not in value:
            errors.append(FieldError(_child(path, name), ErrorType.REQUIRED, ""))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        detail = f"must have at most {schema['maxProperties']} items"
        errors.append(FieldError(path, ErrorType.TOO_MANY, detail, len(value)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{path} in body should have at least {schema['minProperties']} properties"
        errors.append(FieldError(path, ErrorType.INVALID, detail, value))
    for child_schema, key, item, child_path in _properties(schema, value, path, root):
        _check(child_schema, item, child_path, errors, old=_old_child(old, key))


def _properties(
    schema: Schema,
    value: Mapping[str, Any],
    path: str,
    root: bool,
    entry: Callable[[str, str], str] = _entry,
) -> Iterator[tuple[Schema, str, Any, str]]:
    """Each property (key and value) with the schema that governs it (declared, or
    additionalProperties) and its field path (a map entry's named by ``entry``); unknown fields
    and, at the root, apiVersion/kind/metadata are skipped."""
    props = _props(schema)
    extra = _additional(schema)
    for key, item in value.items():
        if root and key in _ROOT_KEEP:
            continue
        if key in props:
            yield props[key], key, item, _child(path, key)
        elif extra is not None:
            yield extra, key, item, entry(path, key)


# ---------------------------------------------------------------------------------------------
# CEL rules (x-kubernetes-validations)

_GO_MAX_DURATION = dt.timedelta(microseconds=(2**63 - 1) // 1000)
_ENV = celpy.Environment()  # building the lark parser costs ~0.1 s: one per process


def _cel_duration(text: Any) -> Any:
    """CEL's duration() with Go's time.ParseDuration grammar (celpy's own rejects "µs")."""
    quoted = json.dumps(str(text), ensure_ascii=False)
    try:
        delta = durationpy.from_str(str(text))
    except (durationpy.DurationError, ValueError, OverflowError) as exc:
        return CELEvalError(f"invalid duration {quoted}", type(exc), (str(exc),))
    if delta > _GO_MAX_DURATION:  # time.ParseDuration: int64 nanoseconds, "invalid duration" beyond
        return CELEvalError(f"invalid duration {quoted}", OverflowError, ("beyond int64 nanoseconds",))
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    seconds, rest = divmod(micros, 1_000_000)
    return celtypes.DurationType(seconds=seconds, nanos=rest * 1000)


_FUNCTIONS: dict[str, Any] = {"duration": _cel_duration}


@functools.lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    """Compile once per rule text; returns a celpy Runner, or the parse exception to report."""
    try:
        return _ENV.program(_ENV.compile(rule), functions=_FUNCTIONS)
    except Exception as exc:  # a CELParseError, reported as the rule's error
        return exc


_TRANSITION = re.compile(r"\boldSelf\b")


def _check_rules(
    schema: Schema, value: Any, path: str, errors: list[FieldError], root: bool = False, old: Any = _MISSING
) -> None:
    if value is None or (old is not _MISSING and value == old):
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        _run_rule(schema, rule, value, path, errors)
    if isinstance(value, Mapping):
        for child_schema, key, item, child_path in _properties(schema, value, path, root, _key):
            _check_rules(child_schema, item, child_path, errors, old=_old_child(old, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = cast(Schema, schema["items"])
        for i, item in enumerate(value):
            _check_rules(items, item, _index(path, i), errors)


_REASONS = {
    "FieldValueInvalid": ErrorType.INVALID,
    "FieldValueForbidden": ErrorType.FORBIDDEN,
    "FieldValueRequired": ErrorType.REQUIRED,
    "FieldValueDuplicate": ErrorType.DUPLICATE,
}


#: Outcomes of rule runs, by (id(schema), rule, path, the value's JSON): CEL here is pure (no
#: oldSelf, no clock), so a value seen before gives the same errors. celpy walks its parse tree
#: in Python (~1 ms a rule, a dozen rules per RotationPolicy), which made every policy write cost
#: ~20 ms in the emulator, where kube-apiserver's compiled CEL costs microseconds: a status
#: write, whose spec is unchanged, now re-evaluates nothing under spec. Each entry keeps its
#: schema alive, so an id is never reused while its entry exists.
_RULE_RUNS: dict[tuple[int, str, str, str], tuple[Schema, tuple[FieldError, ...]]] = {}
_RULE_RUNS_LIMIT = 4096


def _run_rule(
    schema: Schema, rule: Mapping[str, Any], value: Any, path: str, errors: list[FieldError]
) -> None:
    text = str(rule["rule"])
    if _TRANSITION.search(text):
        return  # transition rule: no old object on create, and updates are not emulated
    fields = _fields_read(text, str(rule.get("messageExpression") or ""))
    if fields is not None and isinstance(value, Mapping):
        # Only what the rule reads decides its outcome: 1,000 policies that differ in their
        # Secret's name share one run of a rule about their credential.
        value_key: Any = {name: value[name] for name in fields if name in value}
    else:
        value_key = value
    try:
        seen = json.dumps(value_key, sort_keys=True)
    except (TypeError, ValueError):  # not JSON (a test's odd value): evaluate, uncached
        _evaluate_rule(schema, rule, value, path, errors)
        return
    key = (id(schema), json.dumps(rule, sort_keys=True), path, seen)
    cached = _RULE_RUNS.get(key)
    if cached is not None and cached[0] is schema:
        errors.extend(cached[1])
        return
    found: list[FieldError] = []
    _evaluate_rule(schema, rule, value, path, found)
    if len(_RULE_RUNS) >= _RULE_RUNS_LIMIT:
        _RULE_RUNS.clear()
    _RULE_RUNS[key] = (schema, tuple(found))
    errors.extend(found)


_SELF = re.compile(r"\bself\b")
_FIELD_AFTER_SELF = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\(?)")


@functools.lru_cache(maxsize=1024)
def _fields_read(*expressions: str) -> tuple[str, ...] | None:
    """The fields of ``self`` the expressions read (``self.spec``, ``has(self.x)``), or None
    when they may read more: ``self`` on its own, indexed, or with a method (``self.size()``,
    ``self.all(...)``)."""
    fields: set[str] = set()
    for text in expressions:
        for match in _SELF.finditer(text):
            after = _FIELD_AFTER_SELF.match(text, match.end())
            if after is None or after.group(2):
                return None
            fields.add(after.group(1))
    return tuple(sorted(fields))


def _evaluate_rule(
    schema: Schema, rule: Mapping[str, Any], value: Any, path: str, errors: list[FieldError]
) -> None:
    text = str(rule["rule"])
    node_type = str(schema.get("type", "object"))
    activation = {"self": to_cel(schema, value)}
    result = _evaluate(text, activation)
    if isinstance(result, Exception):
        detail = f"rule evaluation error: {_error_text(result)}"
        errors.append(FieldError(path, ErrorType.INVALID, detail, node_type))
        return
    if result is True or (isinstance(result, celtypes.BoolType) and bool(result)):
        return
    message = str(rule.get("message") or "").strip() or f"failed rule: {text.strip()}"
    if rule.get("messageExpression"):
        computed = _evaluate(str(rule["messageExpression"]), activation)
        if isinstance(computed, str) and computed.strip():
            message = computed.strip()
    target = _rule_path(path, str(rule.get("fieldPath") or ""))
    kind = _REASONS.get(str(rule.get("reason") or "FieldValueInvalid"), ErrorType.INVALID)
    if kind is ErrorType.INVALID:
        errors.append(FieldError(target, kind, message, node_type))
    elif kind is ErrorType.DUPLICATE:
        errors.append(FieldError(target, kind, "", node_type))
    else:
        errors.append(FieldError(target, kind, message))


def _error_text(exc: Exception) -> str:
    """celpy packs (message, exception type, exception args) into its errors: keep the message."""
    if isinstance(exc, CELEvalError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _evaluate(text: str, activation: dict[str, Any]) -> Any:
    program = _program(text)
    if isinstance(program, Exception):
        return program
    try:
        return program.evaluate(activation)
    except Exception as exc:  # CELEvalError and friends: reported, never raised to the caller
        return exc


_FIELD_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\['([^']*)'\]")


def _rule_path(path: str, field_path: str) -> str:
    """Resolve a rule's ``fieldPath`` (".a.b" or "['a'].b") below the node it is declared on."""
    for match in _FIELD_PATH_PART.finditer(field_path):
        path = _child(path, match.group(1) or match.group(2))
    return path


def to_cel(schema: Schema, value: Any) -> Any:
    """Bind a JSON value to CEL types the way kube does: schema-driven, so a ``number`` is a double
    even when the JSON holds ``1`` and a ``date-time`` string is a timestamp."""
    if value is None:
        return None
    kind = schema.get("type")
    if isinstance(value, Mapping):
        props = _props(schema)
        extra = _additional(schema)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            sub = props.get(key) if key in props else extra
            out[celtypes.StringType(key)] = to_cel(sub, item) if sub is not None else json_to_cel(item)
        return celtypes.MapType(out)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return celtypes.ListType([to_cel(cast(Schema, items), v) for v in value])
        return json_to_cel(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(float(value))
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.IntType(int(value))
    if isinstance(value, str) and schema.get("format") == "date-time" and _is_date_time(value):
        return celtypes.TimestampType(value)
    return json_to_cel(value)
