"""``vaultDatabase``: Vault's (OpenBao's) database secrets engine mints every credential.

Each rotation reads ``<mount>/creds/<role>``: Vault creates a new database user and returns it
with a lease (step 1, ``mint``; the store records username, password and ``leaseId``). There is
nothing to activate: the user logs in from the moment Vault created it. Step 5 proves it: a real
PostgreSQL login at ``verify`` when the spec names where, otherwise a lookup of the lease in
Vault. Only then is the old lease revoked (step 6, ``retire``: ``sys/leases/revoke``, after which
Vault drops the old user). A rollback revokes the new lease and keeps the old one.

Whose Vault: the policy's store's. Every call goes through the same per-namespace Vault session
the store logs in with (Kubernetes auth as the namespace's service account, or the store's token),
never an identity of the operator's own, so the Vault policies of the namespace decide what a
policy may mint. That identity needs ``read`` on ``<mount>/creds/<role>``, ``update`` on
``sys/leases/renew/<mount>/creds/<role>/*`` and ``sys/leases/revoke/<mount>/creds/<role>/*``
(renewal and revocation name the lease in the URL, so a Vault policy can scope them to the
role's leases) and ``update`` on ``sys/leases/lookup``.

Crash safety: a lease minted and then lost by a crash before the store write (a window of one
HTTP round trip) is recorded nowhere; it is never handed out, and Vault revokes it (and drops its
user) when its TTL ends, unrenewed. Every other lease is in the store and is revoked by the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from rotator.models import PermanentError, reasons
from rotator.models.spec import VaultDatabaseCredential
from rotator.targets.base import LeaseGone, LeaseInfo, TargetAuthFailed, TargetUnavailable
from rotator.targets.credential import Credential

FIELD: Final = "spec.credential.vaultDatabase"
CONNECT_TIMEOUT: Final = 5
LEASE_ID: Final = "leaseId"
_TRANSIENT: Final = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
)
#: SQLSTATE class 28 (invalid authorization) on connect: the credential was refused.
_AUTH_STATES: Final = ("28P01", "28000")
#: What Vault says about a lease it does not know (revoked, expired, never issued).
_GONE: Final = ("invalid lease", "lease not found", "lease is not renewable", "lease expired")

VaultSession = Callable[[], Any | None]
"""The policy's store's Vault client (logged in as the namespace), or None when the store is not
Vault; called when first needed."""


def _errors(exc: hvac.exceptions.VaultError) -> str:
    return ", ".join(str(e) for e in exc.errors) if exc.errors else type(exc).__name__


class VaultDatabaseTarget:
    kind = "vaultDatabase"
    remote = True

    def __init__(self, spec: VaultDatabaseCredential, session: VaultSession, store: str) -> None:
        self._spec = spec
        self._session = session
        self._store = store
        self._client: Any | None = None

    @property
    def creds_path(self) -> str:
        return f"{self._spec.mount}/creds/{self._spec.role}"

    # --- the protocol ------------------------------------------------------------------------
    def mint(self, current: Credential | None) -> Credential:
        response = self._call(lambda client: client.read(self.creds_path), f"read {self.creds_path}")
        data = (response or {}).get("data") or {}
        lease_id = (response or {}).get("lease_id")
        if not (isinstance(data.get("username"), str) and isinstance(data.get("password"), str) and lease_id):
            raise PermanentError(
                reasons.TARGET_INVALID,
                f"{FIELD}: {self.creds_path} answered without a database user and lease "
                f"(is {self._spec.mount} a database secrets engine?)",
            )
        return {
            "username": SecretStr(data["username"]),
            "password": SecretStr(data["password"]),
            LEASE_ID: SecretStr(str(lease_id)),
        }

    def activate(self, new: Credential) -> None:
        """Vault created the user when it minted it: valid already, beside the old one."""

    def authenticate(self, credential: Credential) -> None:
        login = self._spec.verify
        if login is None:
            # No database named: the lease must still be live in Vault (revoked = refused).
            try:
                self.lookup(credential)
            except LeaseGone:
                raise TargetAuthFailed(f"Vault no longer knows {self.reference(credential)}") from None
            return
        # psycopg only where a login is tried: an operator without PostgreSQL never loads it.
        import psycopg
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo(
            host=login.host,
            port=str(login.port),
            dbname=login.database,
            user=credential["username"].get_secret_value(),
            password=credential["password"].get_secret_value(),
            connect_timeout=CONNECT_TIMEOUT,
        )
        where = f"{login.host}:{login.port}/{login.database}"
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if getattr(exc, "sqlstate", None) in _AUTH_STATES or "authentication failed" in str(exc):
                raise TargetAuthFailed(
                    f"PostgreSQL {where} refused the login of {self.reference(credential)}"
                ) from None
            raise TargetUnavailable(f"PostgreSQL {where} ({FIELD}.verify) unreachable") from None

    def retire(self, old: Credential, keep: Credential) -> None:
        lease_id = _lease_id(old)
        if lease_id is None or lease_id == _lease_id(keep):
            return  # an adopted value without a lease of ours, or the one in use: nothing to revoke
        # Revoking a lease Vault no longer knows succeeds (204): a repeat is harmless.
        self._call(
            lambda client: client.adapter.put(f"/v1/sys/leases/revoke/{lease_id}"), "revoke the old lease"
        )

    def reference(self, credential: Credential) -> str:
        lease_id = _lease_id(credential)
        user = credential["username"].get_secret_value()
        return f"user {user} (lease {lease_id})" if lease_id else f"user {user}"

    # --- leases ------------------------------------------------------------------------------
    def lookup(self, credential: Credential) -> LeaseInfo:
        lease_id = self._require_lease(credential)
        response = self._call(
            lambda client: client.sys.read_lease(lease_id), "look up the lease", lease=lease_id
        )
        data = response.get("data") or {}
        issued = _vault_time(data.get("issue_time"))
        expires = _vault_time(data.get("expire_time"))
        renewed = _vault_time(data.get("last_renewal")) or issued
        granted = (
            int((expires - renewed).total_seconds()) if expires and renewed else int(data.get("ttl") or 0)
        )
        return LeaseInfo(
            id=lease_id,
            ttl_seconds=int(data.get("ttl") or 0),
            granted_seconds=granted,
            renewable=bool(data.get("renewable")),
            issued_at=issued,
        )

    def renew(self, credential: Credential, increment_seconds: int) -> LeaseInfo:
        lease_id = self._require_lease(credential)
        response = self._call(
            lambda client: client.adapter.put(
                f"/v1/sys/leases/renew/{lease_id}", json={"increment": increment_seconds}
            ),
            "renew the lease",
            lease=lease_id,
        )
        granted = int(response.get("lease_duration") or 0)
        return LeaseInfo(
            id=lease_id,
            ttl_seconds=granted,
            granted_seconds=increment_seconds,
            renewable=bool(response.get("renewable")),
            capped=granted < increment_seconds,
        )

    # --- helpers -----------------------------------------------------------------------------
    def _vault(self) -> Any:
        if self._client is None:
            client = self._session()
            if client is None:
                raise PermanentError(
                    reasons.TARGET_INVALID,
                    f"{FIELD}: the policy's store ({self._store}) is not a Vault store; Vault "
                    "database credentials are read with the store's Vault session",
                )
            self._client = client
        return self._client

    def _call(self, request: Callable[[Any], Any], what: str, *, lease: str | None = None) -> Any:
        client = self._vault()
        try:
            return request(client)
        except _TRANSIENT as exc:
            raise TargetUnavailable(f"Vault ({FIELD}): {what}: {type(exc).__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise TargetUnavailable(f"Vault ({FIELD}): {what}: {type(exc).__name__}") from None
        except hvac.exceptions.Forbidden as exc:
            raise PermanentError(
                reasons.TARGET_PRIVILEGES,
                f"{FIELD}: the store's Vault identity may not {what} ({self.creds_path}): {_errors(exc)}",
            ) from None
        except hvac.exceptions.VaultError as exc:
            detail = _errors(exc)
            if lease is not None and any(text in detail.lower() for text in _GONE):
                raise LeaseGone(f"lease {lease}: {detail}") from None
            field = f"{FIELD}.role" if lease is None else FIELD
            raise PermanentError(
                reasons.TARGET_INVALID, f"{field}: Vault refused to {what}: {detail}"
            ) from None

    def _require_lease(self, credential: Credential) -> str:
        lease_id = _lease_id(credential)
        if lease_id is None:
            raise LeaseGone(f"{self.reference(credential)} has no lease id in the store")
        return lease_id


def _lease_id(credential: Credential) -> str | None:
    value = credential.get(LEASE_ID)
    return value.get_secret_value() if value is not None else None


def _vault_time(text: object) -> datetime | None:
    """Vault's RFC 3339 times (nanoseconds; Python keeps microseconds)."""
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text)
