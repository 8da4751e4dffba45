"""The CRD validator answers like kube-apiserver: one test per schema keyword and CEL feature."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.sandbox.schema_validation import (
    ErrorType,
    FieldError,
    admit,
    apply_defaults,
    format_status_message,
    prune,
    status_body,
    unknown_fields,
    validate,
)

Schema = dict[str, Any]


def root(spec: Schema) -> Schema:
    """A CRD-like root schema with ``spec`` as given."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
        },
    }


def check(spec_schema: Schema, spec: Any) -> list[str]:
    """Validate ``{"spec": spec}`` and return the errors as kube prints them."""
    obj = {"metadata": {"name": "x"}, "spec": spec}
    return [str(e) for e in validate(root(spec_schema), obj)]


def obj_schema(**props: Schema) -> Schema:
    return {"type": "object", "properties": props}


SKIPPED = (
    '<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
    "correct the existing errors to complete validation"
)


# --- structural keywords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "actual"),
    [
        ("string", 1, "integer"),
        ("integer", "1", "string"),
        ("integer", 1.5, "number"),
        ("number", True, "boolean"),
        ("boolean", "true", "string"),
        ("array", {}, "object"),
        ("object", [], "array"),
    ],
)
def test_type(kind: str, value: Any, actual: str) -> None:
    assert check(obj_schema(a={"type": kind}), {"a": value}) == [
        f'spec.a: Invalid value: "{actual}": spec.a in body must be of type {kind}: "{actual}"',
        SKIPPED,
    ]


@pytest.mark.parametrize(
    ("kind", "value"), [("integer", 2), ("integer", 2.0), ("number", 2), ("number", 2.5)]
)
def test_numbers_accept_integral_values(kind: str, value: Any) -> None:
    assert check(obj_schema(a={"type": kind}), {"a": value}) == []


def test_required() -> None:
    schema = {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}}}
    assert check(schema, {"b": 1}) == ["spec.a: Required value", SKIPPED]


def test_enum() -> None:
    schema = obj_schema(a={"type": "string", "enum": ["x", "y"]})
    assert check(schema, {"a": "x"}) == []
    assert check(schema, {"a": "z"})[0] == 'spec.a: Unsupported value: "z": supported values: "x", "y"'


def test_pattern() -> None:
    schema = obj_schema(a={"type": "string", "pattern": "^[a-z]+$"})
    assert check(schema, {"a": "abc"}) == []
    assert check(schema, {"a": "ABC"}) == [
        "spec.a: Invalid value: \"ABC\": spec.a in body should match '^[a-z]+$'"
    ]


def test_min_and_max_length() -> None:
    schema = obj_schema(a={"type": "string", "minLength": 2, "maxLength": 3})
    assert check(schema, {"a": "ab"}) == []
    assert check(schema, {"a": "a"}) == [
        'spec.a: Invalid value: "a": spec.a in body should be at least 2 chars long'
    ]
    assert check(schema, {"a": "abcd"}) == ["spec.a: Too long: may not be more than 3 bytes", SKIPPED]
    # Characters, not bytes, as kube-openapi counts runes.
    assert check(schema, {"a": "µµµ"}) == []


def test_minimum_and_maximum() -> None:
    schema = obj_schema(a={"type": "integer", "minimum": 1, "maximum": 5})
    assert check(schema, {"a": 1}) == []
    assert check(schema, {"a": 0}) == [
        "spec.a: Invalid value: 0: spec.a in body should be greater than or equal to 1"
    ]
    assert check(schema, {"a": 6}) == [
        "spec.a: Invalid value: 6: spec.a in body should be less than or equal to 5"
    ]


def test_exclusive_bounds_and_multiple_of() -> None:
    schema = obj_schema(
        a={"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True},
        b={"type": "integer", "multipleOf": 5},
    )
    assert check(schema, {"a": 0.5, "b": 10}) == []
    assert check(schema, {"a": 0}) == ["spec.a: Invalid value: 0: spec.a in body should be greater than 0"]
    assert check(schema, {"a": 1}) == ["spec.a: Invalid value: 1: spec.a in body should be less than 1"]
    assert check(schema, {"b": 7}) == ["spec.b: Invalid value: 7: spec.b in body should be a multiple of 5"]


def test_min_and_max_items_and_item_paths() -> None:
    schema = obj_schema(a={"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}})
    assert check(schema, {"a": ["x"]}) == []
    assert check(schema, {"a": []})[0].startswith("spec.a: Invalid value: ")
    assert check(schema, {"a": []})[0].endswith("spec.a in body should have at least 1 items")
    assert check(schema, {"a": ["x", "y", "z"]}) == [
        "spec.a: Too many: 3: must have at most 2 items",
        SKIPPED,
    ]
    assert check(schema, {"a": ["x", 1]})[0].startswith("spec.a[1]: Invalid value: ")


def test_nested_paths() -> None:
    schema = obj_schema(
        targets={
            "type": "array",
            "items": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}},
        }
    )
    errors = validate(root(schema), {"spec": {"targets": [{"kind": "a"}, {}]}})
    assert errors[0] == FieldError("spec.targets[1].kind", ErrorType.REQUIRED, "")


def test_additional_properties_entries_are_named_like_properties() -> None:
    """kube-openapi's object validator appends ``.key`` for an additionalProperties entry (CEL's
    ``field.Path.Key`` says ``[key]``, see the CEL map test below)."""
    schema = obj_schema(labels={"type": "object", "additionalProperties": {"type": "string"}})
    assert check(schema, {"labels": {"a": "1"}}) == []
    assert check(schema, {"labels": {"a": 1}})[0].startswith("spec.labels.a: Invalid value: ")


def test_min_and_max_properties() -> None:
    schema = obj_schema(
        m={"type": "object", "maxProperties": 1, "x-kubernetes-preserve-unknown-fields": True}
    )
    assert check(schema, {"m": {"a": 1}}) == []
    assert check(schema, {"m": {"a": 1, "b": 2}})[0] == "spec.m: Too many: 2: must have at most 1 items"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-11-27T20:00:00Z", True),
        ("2026-11-27T20:00:00.123+01:00", True),
        ("2026-11-27 20:00:00Z", True),
        ("2026-11-27", False),
        ("2026-13-27T20:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_format_date_time(value: str, ok: bool) -> None:
    errors = check(obj_schema(t={"type": "string", "format": "date-time"}), {"t": value})
    expected = (
        []
        if ok
        else [f'spec.t: Invalid value: "{value}": spec.t in body must be of type date-time: "{value}"']
    )
    assert errors[:1] == expected


def test_unknown_formats_are_ignored_as_by_kube() -> None:
    assert check(obj_schema(a={"type": "string", "format": "made-up"}), {"a": "x"}) == []


def test_nullable() -> None:
    schema = obj_schema(a={"type": "string", "nullable": True}, b={"type": "string"})
    assert check(schema, {"a": None}) == []
    assert (
        check(schema, {"b": None})[0]
        == 'spec.b: Invalid value: "null": spec.b in body must be of type string: "null"'
    )


def test_list_type_set() -> None:
    schema = obj_schema(a={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}})
    assert check(schema, {"a": ["x", "y"]}) == []
    assert check(schema, {"a": ["x", "y", "x"]}) == ['spec.a[2]: Duplicate value: "x"']


def test_list_type_map() -> None:
    item = obj_schema(kind={"type": "string"}, name={"type": "string"}, extra={"type": "integer"})
    schema = obj_schema(
        a={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["kind", "name"],
            "items": item,
        }
    )
    ok = [{"kind": "D", "name": "a", "extra": 1}, {"kind": "S", "name": "a", "extra": 1}]
    assert check(schema, {"a": ok}) == []
    dup = [*ok, {"kind": "D", "name": "a", "extra": 2}]
    assert check(schema, {"a": dup}) == [
        'spec.a[2]: Duplicate value: map[string]interface {}{"kind":"D", "name":"a"}'
    ]


# --- metadata -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"name": "orders-db.v1"}, []),
        ({"generateName": "orders-"}, []),
        # metadata errors count as blocking too (kube checks them in the same list).
        ({}, ["metadata.name: Required value: name or generateName is required", SKIPPED]),
        ({"name": "Orders_DB"}, ["metadata.name"]),
        ({"name": "a" * 254}, ["metadata.name"]),
    ],
)
def test_metadata_name(meta: dict[str, Any], expected: list[str]) -> None:
    errors = validate(root(obj_schema()), {"metadata": meta, "spec": {}})
    if expected and ":" not in expected[0]:
        assert errors
        assert {e.field for e in errors} == set(expected)
        assert all(e.type == ErrorType.INVALID for e in errors)
    else:
        assert [str(e) for e in errors] == expected


def test_metadata_content_is_not_checked_against_the_schema() -> None:
    assert validate(root(obj_schema()), {"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {}}) == []


# --- pruning and defaulting ---------------------------------------------------------------------


def test_prune_drops_unknown_fields_and_keeps_root_fields() -> None:
    schema = root(obj_schema(a={"type": "object", "properties": {"b": {"type": "string"}}}))
    obj: dict[str, Any] = {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "x", "anything": 1},
        "spec": {"a": {"b": "1", "c": 2}, "d": 3},
        "status": {"e": 4},
    }
    assert prune(schema, obj) == {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "x", "anything": 1},
        "spec": {"a": {"b": "1"}},
    }
    assert unknown_fields(schema, obj) == ["spec.a.c", "spec.d", "status"]
    assert obj["spec"]["d"] == 3, "the input is not modified"


def test_prune_honours_preserve_unknown_fields_and_additional_properties() -> None:
    schema = root(
        obj_schema(
            free={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            mixed={
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"known": obj_schema(k={"type": "string"})},
            },
            labels={"type": "object", "additionalProperties": obj_schema(v={"type": "string"})},
            items={"type": "array", "items": obj_schema(n={"type": "string"})},
        )
    )
    spec = {
        "free": {"x": {"y": 1}},
        "mixed": {"other": 1, "known": {"k": "a", "drop": 1}},
        "labels": {"a": {"v": "1", "drop": 2}},
        "items": [{"n": "1", "drop": 3}],
    }
    assert prune(schema, {"spec": spec})["spec"] == {
        "free": {"x": {"y": 1}},
        "mixed": {"other": 1, "known": {"k": "a"}},
        "labels": {"a": {"v": "1"}},
        "items": [{"n": "1"}],
    }


def test_defaults_apply_to_missing_and_null_fields_recursively() -> None:
    inner = {
        "type": "object",
        "default": {},
        "properties": {"timeout": {"type": "string", "default": "10m"}, "n": {"type": "integer"}},
    }
    schema = root(
        obj_schema(
            verify=inner,
            key={"type": "string", "default": "password"},
            keep={"type": "string", "nullable": True, "default": "d"},
            gone={"type": "string"},
            list={"type": "array", "items": obj_schema(k={"type": "string", "default": "v"})},
        )
    )
    obj = {"spec": {"key": None, "keep": None, "gone": None, "list": [{}, {"k": "x"}], "verify": {"n": None}}}
    assert apply_defaults(schema, obj)["spec"] == {
        "verify": {"timeout": "10m"},
        "key": "password",
        "keep": None,
        "list": [{"k": "v"}, {"k": "x"}],
    }
    assert obj["spec"]["key"] is None, "the input is not modified"


def test_admit_prunes_defaults_then_validates() -> None:
    schema = root(
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "default": "x"}}}
    )
    stored, errors = admit(schema, {"metadata": {"name": "n"}, "spec": {"junk": 1}})
    assert stored["spec"] == {"a": "x"}
    assert errors == []


# --- CEL ----------------------------------------------------------------------------------------

ONE_OF = {
    "type": "object",
    "properties": {"vault": {"type": "object"}, "aws": {"type": "object"}},
    "x-kubernetes-validations": [
        {
            "rule": "[has(self.vault), has(self.aws)].filter(x, x).size() == 1",
            "message": "exactly one of vault or aws",
        }
    ],
}


def test_cel_rule_with_message_reports_object_type() -> None:
    schema = obj_schema(store=ONE_OF)
    assert check(schema, {"store": {"vault": {}}}) == []
    assert check(schema, {"store": {}}) == [
        'spec.store: Invalid value: "object": exactly one of vault or aws'
    ]


def test_cel_rule_without_message() -> None:
    schema = obj_schema(n={"type": "integer", "x-kubernetes-validations": [{"rule": "self > 1"}]})
    assert check(schema, {"n": 1}) == ['spec.n: Invalid value: "integer": failed rule: self > 1']


def test_cel_message_expression_field_path_and_reason() -> None:
    rule = {
        "rule": "self.a <= self.b",
        "message": "static",
        "messageExpression": "'a (' + string(self.a) + ') exceeds b'",
        "fieldPath": ".a",
        "reason": "FieldValueForbidden",
    }
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "x-kubernetes-validations": [rule],
    }
    assert check(schema, {"a": 2, "b": 1}) == ["spec.a: Forbidden: a (2) exceeds b"]


def test_cel_macros_and_functions_cel_python_supports() -> None:
    rules = [
        "self.items.all(i, i.matches('^[a-z]+$'))",
        "self.items.exists(i, i == 'b')",
        "self.items.filter(i, i != 'a').size() == 1",
        "size(self.items) == 2",
        "has(self.items) && !has(self.missing)",
        "self.items[0].startsWith('a') && 'b' in self.items",
    ]
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": r} for r in rules],
    }
    assert check(schema, {"items": ["a", "b"]}) == []


def test_cel_binds_numbers_by_schema_type() -> None:
    """A ``number`` holding JSON 1 is a double in CEL (kube does the same); int == double fails."""
    schema = obj_schema(x={"type": "number", "x-kubernetes-validations": [{"rule": "self == 1.0"}]})
    assert check(schema, {"x": 1}) == []


def test_cel_durations_use_go_grammar() -> None:
    rule = "duration(self.a) < duration(self.b)"
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": rule}],
    }
    assert check(schema, {"a": "1µs", "b": "1ms"}) == []
    assert check(schema, {"a": "1h30m", "b": "90m"}) == [
        f'spec: Invalid value: "object": failed rule: {rule}'
    ]
    bad = check(schema, {"a": "soon", "b": "1h"})
    assert bad == ['spec: Invalid value: "object": rule evaluation error: invalid duration "soon"']


def test_cel_binds_date_time_as_timestamp() -> None:
    schema = obj_schema(
        t={
            "type": "string",
            "format": "date-time",
            "x-kubernetes-validations": [{"rule": "self.getFullYear() == 2026"}],
        }
    )
    assert check(schema, {"t": "2026-11-27T20:00:00Z"}) == []


def test_cel_rules_on_array_items_and_map_values() -> None:
    item = {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "no"}]}
    schema = obj_schema(
        list={"type": "array", "items": item},
        map={"type": "object", "additionalProperties": item},
    )
    assert check(schema, {"list": ["ok", "bad"], "map": {"k": "bad"}}) == [
        'spec.list[1]: Invalid value: "string": no',
        'spec.map[k]: Invalid value: "string": no',
    ]


def test_transition_rules_are_skipped_on_create() -> None:
    schema = obj_schema(a={"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]})
    assert check(schema, {"a": "x"}) == []


def test_blocking_errors_skip_cel_like_kube() -> None:
    schema = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "vault": {"type": "object"}},
        "x-kubernetes-validations": [{"rule": "has(self.vault)", "message": "never evaluated"}],
    }
    assert check(schema, {}) == ["spec.name: Required value", SKIPPED]


def test_non_blocking_errors_still_run_cel() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^a$"}},
        "x-kubernetes-validations": [{"rule": "self.name.size() > 3", "message": "too short"}],
    }
    assert check(schema, {"name": "b"}) == [
        "spec.name: Invalid value: \"b\": spec.name in body should match '^a$'",
        'spec: Invalid value: "object": too short',
    ]


def test_cel_syntax_error_is_reported_not_raised() -> None:
    schema = obj_schema(a={"type": "string", "x-kubernetes-validations": [{"rule": "self ==="}]})
    errors = check(schema, {"a": "x"})
    assert len(errors) == 1
    assert errors[0].startswith('spec.a: Invalid value: "string": rule evaluation error: ')


# --- messages -----------------------------------------------------------------------------------


def test_status_message_single_error_has_no_brackets() -> None:
    errors = [FieldError("spec.secret.name", ErrorType.REQUIRED, "")]
    assert (
        format_status_message("RotationPolicy", "rotator.dev", "orders-db", errors)
        == 'RotationPolicy.rotator.dev "orders-db" is invalid: spec.secret.name: Required value'
    )


def test_status_message_several_errors_bracketed_and_deduplicated() -> None:
    one = FieldError("spec.path", ErrorType.INVALID, "must not contain '.' or '..' segments", "string")
    two = FieldError("spec.storeRef.name", ErrorType.REQUIRED, "")
    assert format_status_message("RotationPolicy", "rotator.dev", "orders-db", [one, two, two]) == (
        'RotationPolicy.rotator.dev "orders-db" is invalid: [spec.path: Invalid value: "string": '
        "must not contain '.' or '..' segments, spec.storeRef.name: Required value]"
    )


def test_status_body_is_a_422_status() -> None:
    errors = [FieldError("spec.restart.targets", ErrorType.TOO_MANY, "must have at most 50 items", 51)]
    body = status_body("RotationPolicy", "rotator.dev", "orders-db", errors)
    assert body["code"] == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTooMany",
            "message": "Too many: 51: must have at most 50 items",
            "field": "spec.restart.targets",
        }
    ]


def test_value_printing_follows_go() -> None:
    assert str(FieldError("a", ErrorType.INVALID, "d", True)) == "a: Invalid value: true: d"
    assert str(FieldError("a", ErrorType.INVALID, "d", 1.5)) == "a: Invalid value: 1.5: d"
    assert str(FieldError("a", ErrorType.INVALID, "d", None)) == 'a: Invalid value: "null": d'
    assert str(FieldError("a", ErrorType.FORBIDDEN, "no", "x")) == "a: Forbidden: no"


def test_a_rule_run_again_on_the_same_value_gives_the_same_errors() -> None:
    """Rule outcomes are memoized per value (celpy is slow): a repeat must not change them, and a
    different value under the same rule must be evaluated afresh."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.n < 3", "message": "n must be below 3"}],
    }
    first = validate(schema, {"n": 5})
    assert [e.detail for e in first] == ["n must be below 3"]
    assert validate(schema, {"n": 5}) == first
    assert validate(schema, {"n": 1}) == []
    assert validate(schema, {"n": 7}) == first


# --- ratcheting (an update is not refused for values it leaves as they were) ----------------------

_RATCHETED = obj_schema(
    port={"type": "integer", "maximum": 100},
    name={"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 4", "message": "short"}]},
)


def _update(before: Schema, after: Schema) -> list[str]:
    old = {"metadata": {"name": "x", "resourceVersion": "1"}, "spec": before}
    new = {"metadata": {"name": "x", "resourceVersion": "2"}, "spec": after}
    return [str(e) for e in validate(root(_RATCHETED), new, old)]


def test_an_update_leaving_an_invalid_value_alone_is_not_refused_for_it() -> None:
    # Stored before the schema tightened: port 500 and a long name stay as they were.
    assert _update({"port": 500, "name": "long-name"}, {"port": 500, "name": "long-name"}) == []


def test_an_update_changing_a_value_validates_that_value() -> None:
    assert _update({"port": 500, "name": "abc"}, {"port": 501, "name": "abc"}) == [
        "spec.port: Invalid value: 501: spec.port in body should be less than or equal to 100"
    ]
    assert _update({"port": 1, "name": "abc"}, {"port": 1, "name": "abcd"}) == [
        'spec.name: Invalid value: "string": short'
    ]


def test_a_create_has_nothing_to_ratchet_against() -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"port": 500, "name": "long-name"}}
    assert len(validate(root(_RATCHETED), obj)) == 2
    stored, errors = admit(root(_RATCHETED), obj)
    assert len(errors) == 2
    assert stored["spec"] == obj["spec"]


def test_an_update_admits_as_a_create_would_and_keeps_the_field_order() -> None:
    """A part equal to the stored one is not pruned and defaulted again (both are idempotent):
    the stored object must be what a full admission gives, in the same order."""
    schema = root(
        {
            "type": "object",
            "default": {"a": "from-root-default"},
            "properties": {"a": {"type": "string", "default": "x"}, "b": {"type": "integer"}},
        }
    )
    schema["properties"]["status"] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    first, _ = admit(schema, {"metadata": {"name": "n"}, "spec": {"junk": 1, "b": 2}, "status": {"n": 1}})
    assert first["spec"] == {"a": "x", "b": 2}
    status_write = {
        "apiVersion": "v",
        "metadata": {"name": "n"},
        "spec": dict(first["spec"]),
        "status": {"n": 2, "junk": 0},
    }
    stored, errors = admit(schema, status_write, first)
    assert errors == []
    assert stored == admit(schema, status_write, None)[0]
    assert list(stored) == ["apiVersion", "metadata", "spec", "status"]
    assert stored["spec"] == {"a": "x", "b": 2}, "neither replaced by the spec's own default nor changed"
    assert stored["status"] == {"n": 2}, "the changed part is pruned as before"


def test_a_rule_remembered_by_the_fields_it_reads_still_judges_each_value() -> None:
    """Rule runs are remembered by the fields of self the rule reads; a rule that may read the
    whole value (a method on self) is remembered by all of it."""
    by_field: dict[str, Any] = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.a < 3", "message": "a must be below 3"}],
    }
    assert [e.detail for e in validate(by_field, {"a": 5, "b": 1})] == ["a must be below 3"]
    assert [e.detail for e in validate(by_field, {"a": 5, "b": 2})] == ["a must be below 3"]
    assert validate(by_field, {"a": 1, "b": 2}) == []
    assert [e.detail for e in validate(by_field, {"b": 2})] != [], "an absent field is not the same value"
    whole: dict[str, Any] = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.size() < 2", "message": "one field at most"}],
    }
    assert validate(whole, {"a": 1}) == []
    assert [e.detail for e in validate(whole, {"a": 1, "b": 2})] == ["one field at most"]
