"""Deep copies of JSON documents: the emulator's hottest operation, and the operator's watch
cache's (each object it keeps or hands out is a private copy).

Every read, write and watch event of the emulator hands out or keeps a private copy of an
object. ``copy.deepcopy`` walks each node in Python with a memo; a marshal round trip does the
same walk in C, about eight times faster on a RotationPolicy with its status. Both keep dict
order and shared sub-objects. Anything marshal cannot encode (not plain JSON: a subclass of
str, a datetime) falls back to ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
import marshal
from typing import Any, TypeVar

T = TypeVar("T")


def clone(value: T) -> T:
    try:
        plain: Any = value
        copied: T = marshal.loads(marshal.dumps(plain))  # noqa: S302 (bytes made just now, here)
    except ValueError:
        return copy.deepcopy(value)
    return copied
