"""The Target protocol: where a credential must be valid, and the four verbs a rotation needs.

A rotation (DESIGN §1) drives its target through these verbs only, each safe to repeat with the
same arguments (the engine may crash and run any step again):

- ``mint(current)`` — step 1: the fields of a new credential beside ``current`` (for
  ``postgresRole`` the inactive role and a fresh password). The result is written to the store as
  pending before anything else happens, so the store is the record of what was minted.
- ``activate(new)`` — step 2: make ``new`` authenticate at the target, beside the old one.
- ``authenticate(credential)`` — step 5: prove a credential works (a real login); raises
  :class:`TargetAuthFailed` when it is refused.
- ``retire(old, keep)`` — step 6 (and rollback, for the failed new one): make ``old`` stop
  working, never touching ``keep``.

Status and Events carry references (a role name), never values. Errors: :class:`TargetUnavailable`
is temporary (retry with backoff); refusals no retry fixes are ``PermanentError`` with a reason
from :mod:`rotator.models.reasons` and a message naming the spec field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr

from rotator.targets.credential import Credential
from rotator.targets.password import generate_password


class TargetUnavailable(Exception):
    """Temporary: the target did not answer (connection refused, timeout); retry with backoff."""


class TargetAuthFailed(Exception):
    """The target refused a credential it should accept (verify: the new credential is bad)."""


class LeaseGone(Exception):
    """The lease is unknown to its issuer (revoked or expired): the credential no longer works."""


@dataclass(frozen=True)
class LeaseInfo:
    """A lease as its issuer answered, by reference: never the credential."""

    id: str
    #: Seconds left from the moment of the answer (the caller adds them to its own clock).
    ttl_seconds: int
    #: What the lease was issued or last renewed with: what a renewal asks for again.
    granted_seconds: int
    renewable: bool
    issued_at: datetime | None = None
    #: A renewal was granted less than it asked for: the lease ends at its max TTL.
    capped: bool = False


@runtime_checkable
class LeasedTarget(Protocol):
    """A target whose credentials are leases (``vaultDatabase``): the idle policy looks the
    current one up, renews it while renewable, and rotates before it ends."""

    def lookup(self, credential: Credential) -> LeaseInfo:
        """The lease of ``credential``; :class:`LeaseGone` when the issuer no longer knows it."""
        ...

    def renew(self, credential: Credential, increment_seconds: int) -> LeaseInfo:
        """Extend the lease by ``increment_seconds`` (the issuer may grant less: ``capped``)."""
        ...


@runtime_checkable
class Target(Protocol):
    kind: str
    """``"password"`` | ``"postgresRole"`` | ``"vaultDatabase"``: a bounded metric label."""

    remote: bool
    """False when there is no system to talk to (``password``): the steps skip the calls and the
    store reads they would need."""

    def mint(self, current: Credential | None) -> Credential: ...

    def activate(self, new: Credential) -> None: ...

    def authenticate(self, credential: Credential) -> None: ...

    def retire(self, old: Credential, keep: Credential) -> None: ...

    def reference(self, credential: Credential) -> str:
        """What status and Events may say about a credential (a role name), never a value."""
        ...


class PasswordTarget:
    """The target-less credential: a random password, valid by construction wherever the
    consumer compares it (old and new both valid until the store revokes the old version)."""

    kind = "password"
    remote = False

    def __init__(self, generate: Callable[[], SecretStr]) -> None:
        self._generate = generate

    def mint(self, current: Credential | None) -> Credential:
        return {"password": self._generate()}

    def activate(self, new: Credential) -> None:
        """Nothing to activate."""

    def authenticate(self, credential: Credential) -> None:
        """Nothing to log in to."""

    def retire(self, old: Credential, keep: Credential) -> None:
        """Revoking the store version is all there is."""

    def reference(self, credential: Credential) -> str:
        return "password"


__all__ = [
    "Credential",
    "LeaseGone",
    "LeaseInfo",
    "LeasedTarget",
    "PasswordTarget",
    "Target",
    "TargetAuthFailed",
    "TargetUnavailable",
    "generate_password",
]


class AwsClients(Protocol):
    """An AWS identity's clients (``rotator.stores.aws.auth.AwsSession``: the store's session).
    Here, not beside the IAM target: naming the type must not import botocore."""

    def client(self, service: str) -> Any: ...

    def client_as(self, service: str, access_key_id: str, secret_access_key: str) -> Any: ...
