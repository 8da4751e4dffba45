"""Pure helpers of the Kubernetes API emulator: patches and selectors.

Kept apart from the HTTP layer so that they can be unit-tested as plain functions and so that
the emulator module stays about request handling. Everything here works on JSON-like data
(dicts, lists, scalars) and never mutates its inputs: the store keeps the previous object to
compare generations and to answer conflicts, so a patch must build a new object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rotator.json_copy import clone


class PatchError(Exception):
    """A patch that cannot be applied: malformed (400) or a failed ``test`` op (422)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------------------------
# JSON patch (RFC 6902), as kubectl and the kubernetes client send with application/json-patch+json.


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}", status=400)
    return [_unescape(token) for token in pointer[1:].split("/")]


def _resolve_parent(doc: Any, tokens: list[str], pointer: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist")
    return node, tokens[-1]


def _list_index(node: list[Any], token: str, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit():
        raise PatchError(f"invalid list index {token!r} in {pointer!r}")
    index = int(token)
    limit = len(node) + (1 if allow_end else 0)
    if index >= limit:
        raise PatchError(f"list index {index} out of range in {pointer!r}")
    return index


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _split_pointer(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist")
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _split_pointer(pointer)
    if not tokens:
        return value
    parent, last = _resolve_parent(doc, tokens, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, pointer, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _split_pointer(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _resolve_parent(doc, tokens, pointer)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, pointer, allow_end=False))
    raise PatchError(f"path {pointer!r} does not exist")


def apply_json_patch(doc: Mapping[str, Any], ops: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations; a failed ``test`` raises 422 as kube-apiserver answers."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations", status=400)
    result: Any = clone(dict(doc))
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"malformed JSON patch operation: {op!r}", status=400)
        kind, path = op["op"], op["path"]
        if kind == "add":
            result = _add(result, path, clone(op.get("value")))
        elif kind == "remove":
            _remove(result, path)
        elif kind == "replace":
            _get(result, path)  # must exist
            tokens = _split_pointer(path)
            if not tokens:
                result = clone(op.get("value"))
            else:
                parent, last = _resolve_parent(result, tokens, path)
                index: Any = last if isinstance(parent, dict) else int(last)
                parent[index] = clone(op.get("value"))
        elif kind == "move":
            value = _remove(result, op["from"])
            result = _add(result, path, value)
        elif kind == "copy":
            result = _add(result, path, clone(_get(result, op["from"])))
        elif kind == "test":
            actual = _get(result, path)
            if actual != op.get("value"):
                raise PatchError(
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed: expected {op.get('value')!r}, found {actual!r}"
                )
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}", status=400)
    if not isinstance(result, dict):
        raise PatchError("a JSON patch must leave an object", status=400)
    return result


# --------------------------------------------------------------------------------------------
# Merge patch (RFC 7386) and a small strategic-merge-patch.


def apply_merge_patch(doc: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 7386: dicts merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be an object", status=400)
    result = _merge(clone(dict(doc)), patch, strategic=False)
    assert isinstance(result, dict)
    return result


def apply_strategic_merge_patch(doc: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """Strategic merge, as far as the sandbox needs it.

    Dicts merge like a merge patch; lists of dicts that all carry ``name`` (containers, env,
    volumes, ports) merge by name, with ``$patch: delete`` removing an item, as
    kube-apiserver does for those fields; other lists are replaced. The ``$setElementOrder``
    and ``$retainKeys`` directives kubectl sends are accepted and ignored.
    """
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be an object", status=400)
    result = _merge(clone(dict(doc)), patch, strategic=True)
    assert isinstance(result, dict)
    return result


def _merge(target: Any, patch: Any, *, strategic: bool) -> Any:
    """Merge ``patch`` into ``target``, which is the caller's own copy (changed in place: the
    document is copied once, at the top, not again at every level)."""
    if not isinstance(patch, dict):
        # A list is copied (the request keeps its body); a scalar is immutable.
        return clone(patch) if isinstance(patch, list) else patch
    result: dict[str, Any] = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue  # directives: $setElementOrder/…, $retainKeys, $patch (handled by the caller)
        if value is None:
            result.pop(key, None)
        elif strategic and _is_named_list(value) and _is_named_list(result.get(key, [])):
            result[key] = _merge_named_lists(result.get(key, []), value)
        else:
            result[key] = _merge(result.get(key), value, strategic=strategic)
    return result


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value)


def _merge_named_lists(current: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[Any]:
    merged: list[Any] = list(current)  # items of the caller's own copy: merged in place
    for item in patch:
        positions = [i for i, existing in enumerate(merged) if existing.get("name") == item["name"]]
        if item.get("$patch") == "delete":
            merged = [existing for existing in merged if existing.get("name") != item["name"]]
        elif positions:
            merged[positions[0]] = _merge(merged[positions[0]], item, strategic=True)
        else:
            merged.append(_merge({}, item, strategic=True))
    return merged


# --------------------------------------------------------------------------------------------
# Label and field selectors.


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Say whether a label set satisfies this clause, with Kubernetes' semantics."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)\s*$")


def _split_clauses(selector: str) -> list[str]:
    clauses: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            clauses.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        clauses.append(current)
    return [clause for clause in clauses if clause.strip()]


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k``; raise ValueError when malformed."""
    requirements: list[Requirement] = []
    for clause in _split_clauses(selector):
        if match := _SET_RE.match(clause):
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(match["key"], match["op"], values))
        elif match := _EQ_RE.match(clause):
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(match["key"], op, (match["value"],)))
        elif match := _EXISTS_RE.match(clause):
            requirements.append(Requirement(match["key"], "!exists" if match["neg"] else "exists"))
        else:
            raise ValueError(f"unable to parse requirement: {clause!r}")
    return requirements


def parse_field_selector(selector: str) -> list[Requirement]:
    """Parse ``metadata.name=x,metadata.namespace!=y``; only (in)equality exists for fields."""
    requirements: list[Requirement] = []
    for clause in _split_clauses(selector):
        match = _EQ_RE.match(clause)
        if match is None:
            raise ValueError(f"invalid field selector: {clause!r}")
        op = "!=" if match["op"] == "!=" else "="
        requirements.append(Requirement(match["key"], op, (match["value"],)))
    return requirements


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """Read a dotted field (``metadata.name``, ``involvedObject.uid``) as a string, if present."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if node is None or isinstance(node, (dict, list)):
        return None
    return str(node).lower() if isinstance(node, bool) else str(node)


def matches_selectors(
    obj: Mapping[str, Any],
    labels: list[Requirement],
    fields: list[Requirement],
) -> bool:
    """Say whether an object passes both selectors (an empty selector passes everything)."""
    metadata = obj.get("metadata") or {}
    object_labels = metadata.get("labels") or {}
    if not all(req.matches(object_labels) for req in labels):
        return False
    for req in fields:
        value = field_value(obj, req.key)
        pseudo = {req.key: value} if value is not None else {}
        if req.op == "=" and req.values[0] == "" and value is None:
            continue  # `spec.nodeName=` matches unset fields, as in Kubernetes
        if not req.matches(pseudo):
            return False
    return True
