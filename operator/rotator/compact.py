"""An object kept across a long sleep as compact JSON rather than as nested dicts.

A policy's loop keeps the object its last status write returned, so the next reconcile needs no
read. As parsed JSON that is ~12 KiB a policy (every key, value and dict a Python object); as
one compact bytes string it is a few KiB, and parsing it back costs less than the read it saves.
At 1,000 idle policies that is most of the difference to the 150 MiB goal (issue 11).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def pack(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def unpack(packed: bytes) -> dict[str, Any]:
    found = json.loads(packed)
    assert isinstance(found, dict), "pack() only ever packs an object"
    return found
