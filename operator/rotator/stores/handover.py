"""The one value a store just wrote, handed to the next read of that version in this process.

A rotation writes its new value (step 1) and the sync step reads it back a moment later (step 3):
both backends carry the written value across those reconciles instead of reading it back, per
store session (``KV2Cache``, ``SMCache``). A read of that version takes it out, and any verb
that could make it stale (ownership, revoke, a rollback) drops it: no value outlives the
rotation's sync step, and the revoke step's read is always a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from rotator.logs import SENSITIVE


@dataclass
class Handover:
    """Per secret (a KV path, a secret id): the version this process just wrote and its value."""

    _values: dict[str, tuple[str, SecretStr]] = field(default_factory=dict, repr=False)

    def put(self, secret: str, version: str, value: SecretStr) -> None:
        self._values[secret] = (version, value)

    def peek(self, secret: str, version: str) -> SecretStr | None:
        """The value handed for exactly ``version``, left in place."""
        handed = self._values.get(secret)
        return handed[1] if handed is not None and handed[0] == version else None

    def take(self, secret: str, version: str) -> SecretStr | None:
        """The value handed for exactly ``version``, taken out (the process's logs mask it, as
        they mask every value a store read returns)."""
        value = self.peek(secret, version)
        if value is not None:
            del self._values[secret]
            SENSITIVE.add(value.get_secret_value())
        return value

    def drop(self, secret: str) -> None:
        self._values.pop(secret, None)
