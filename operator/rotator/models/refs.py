"""Small value types every layer passes around: which policy, and which Event to post on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str

    @property
    def owner(self) -> str:
        """``namespace/name``: the owner tag written into the store and the backoff's seed."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the policy; ``reason`` is a :mod:`rotator.models.reasons` constant."""

    reason: str
    message: str
    warning: bool = False
