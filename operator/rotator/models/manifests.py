"""Reading manifest files (YAML, JSON) that may come from anyone, in time linear in their size.

``rotator validate`` runs in CI on pull requests, so its input is untrusted. Plain
``yaml.safe_load`` is not enough there: it builds a "billion laughs" alias bomb quickly (aliases
become shared references), but whatever walks the result afterwards sees every shared branch
again, and a 1 KiB file expands to 10**9 nodes. Three limits make the cost linear in the input:

- **No aliases.** Kubernetes stores JSON, which has no aliases, so in a manifest an alias is only
  a spelling of a value written out elsewhere; kube-apiserver and kubectl receive the expansion.
  A budget of "some aliases" would need a number that is right for every walker downstream;
  refusing them outright needs none, and the fix is obvious (write the value out). Anchors alone
  are harmless and accepted. The first alias stops the parse, before anything is expanded.
- **At most** :data:`MAX_MANIFEST_BYTES` **per file** (1 MiB). etcd's default request limit is
  1.5 MiB per object, and a file of policies 1 MiB long is already far beyond any real one;
  the limit only exists so that parse time has a ceiling (~1 s on one core).
- **At most** :data:`MAX_DEPTH` **levels of nesting** (100). PyYAML composes recursively, so
  ``[[[[…`` a million levels deep would otherwise end in a ``RecursionError``; a RotationPolicy is
  six levels deep.

Bottom layer (models): imports nothing else from rotator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

MAX_MANIFEST_BYTES: Final = 1024 * 1024
MAX_DEPTH: Final = 100


class ManifestError(ValueError):
    """A file that cannot be read as manifests; ``source`` names the file, ``problem`` says why."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class _Refused(yaml.YAMLError):
    """Raised inside the loader; turned into a ManifestError by :func:`parse_manifests`."""


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and deep nesting while composing, before construction."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _Refused(
                f"YAML alias at line {mark.line + 1}, column {mark.column + 1}: aliases are not "
                "supported (Kubernetes stores JSON, which has none); write the value out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                where = f"line {mark.line + 1}, column {mark.column + 1}"
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels at {where}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_manifests(
    data: bytes | str, source: str = "<input>", max_bytes: int = MAX_MANIFEST_BYTES
) -> list[Any]:
    """Every document of a YAML (or JSON) stream; empty documents are dropped.

    Raises :class:`ManifestError` naming ``source`` for input over ``max_bytes``, an alias,
    nesting over :data:`MAX_DEPTH`, text that is not UTF-8, or a YAML syntax error.
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise ManifestError(source, f"larger than {_size(max_bytes)} (manifest files are limited to it)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    loader = _StrictLoader(text)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            document = loader.get_data()
            if document is not None:
                documents.append(document)
        return documents
    except _Refused as exc:
        raise ManifestError(source, str(exc)) from None
    except yaml.YAMLError as exc:
        raise ManifestError(source, "invalid YAML: " + " ".join(str(exc).split())) from None
    finally:
        loader.dispose()


def load_manifests(path: str | Path, max_bytes: int = MAX_MANIFEST_BYTES) -> list[Any]:
    """:func:`parse_manifests` of a file, reading at most ``max_bytes + 1`` bytes of it."""
    source = str(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise ManifestError(source, f"cannot read: {exc.strerror or exc}") from None
    return parse_manifests(raw, source, max_bytes)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"
