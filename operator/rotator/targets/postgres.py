"""``postgresRole``: alternating PostgreSQL login roles, the zero-downtime strategy AWS documents
for database rotation.

Two login roles ``<role>_a`` and ``<role>_b`` are members of ``groupRole``, which holds the
grants, so either one can do what the application needs. A rotation sets a fresh password on the
inactive role (step 2, ``activate``), consumers move to it, a real login proves it (step 5), and
only then is the previously active role locked: ``NOLOGIN`` and its password reset to a value
nobody knows (step 6, ``retire``). It is never dropped: a session that still holds it keeps
working until it disconnects, and the next rotation reuses it.

Safety rules:
- Passwords travel as SCRAM-SHA-256 verifiers computed here, never as plain text: a server that
  logs statements (``log_statement = 'ddl'``) logs a hash, and only of a random salt.
- rotator touches only login roles it created, marked with ``COMMENT ON ROLE ... IS
  'rotator.dev/owner=<namespace>/<policy>'``; an existing role without that mark, or marked for
  another policy, or a superuser, is refused (a policy must not take over someone else's role).
- The admin connection comes from a Secret in the policy's namespace labelled
  ``rotator.dev/target-credential=true`` (see :mod:`rotator.targets.opener`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from rotator.models import PermanentError, keys, reasons
from rotator.models.spec import PostgresRoleCredential
from rotator.targets.base import TargetAuthFailed, TargetUnavailable
from rotator.targets.credential import Credential

FIELD: Final = "spec.credential.postgresRole"
CONNECT_TIMEOUT: Final = 5
SCRAM_ITERATIONS: Final = 4096
OWNER_MARK: Final = f"{keys.STORE_OWNER}="
#: SQLSTATE class 28 (invalid authorization) on connect: the credential was refused.
_AUTH_STATES: Final = ("28P01", "28000")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677; what the server
    computes itself from ``PASSWORD 'plain'``). Passwords here are ASCII, so SASLprep is identity."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _unknown_password() -> str:
    return scram_verifier(secrets.token_urlsafe(32))


class PostgresRoleTarget:
    kind = "postgresRole"
    remote = True

    def __init__(
        self,
        spec: PostgresRoleCredential,
        admin_dsn: Callable[[], SecretStr],
        owner: str,
        generate: Callable[[], SecretStr],
    ) -> None:
        self._spec = spec
        self._read_admin_dsn = admin_dsn
        self._dsn: SecretStr | None = None
        self._owner = owner
        self._generate = generate
        self._where = "(not connected yet)"

    @property
    def _admin_dsn(self) -> SecretStr:
        """Read when first needed: minting needs no connection, so step 1 reads no Secret."""
        if self._dsn is None:
            dsn = self._read_admin_dsn()
            try:
                params = conninfo_to_dict(dsn.get_secret_value())
            except psycopg.ProgrammingError:
                raise PermanentError(
                    reasons.TARGET_INVALID,
                    f"{FIELD}.connectionSecretRef: the admin connection URI does not parse",
                ) from None
            host, port, db = (
                params.get("host", "localhost"),
                params.get("port", 5432),
                params.get("dbname", ""),
            )
            self._where = f"{host}:{port}/{db}"
            self._dsn = dsn
        return self._dsn

    # --- the protocol ------------------------------------------------------------------------
    def mint(self, current: Credential | None) -> Credential:
        first, second = self._spec.login_roles
        active = current.get("username") if current is not None else None
        inactive = second if active is not None and active.get_secret_value() == first else first
        return {"username": SecretStr(inactive), "password": self._generate()}

    def activate(self, new: Credential) -> None:
        role = self._login_role(new)
        verifier = scram_verifier(new["password"].get_secret_value())
        with self._admin() as conn:
            self._ensure_group(conn)
            if self._claim(conn, role):
                self._execute(
                    conn,
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(verifier)
                    ),
                    f"{FIELD}.role",
                )
            else:
                self._execute(
                    conn,
                    sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(verifier)
                    ),
                    f"{FIELD}.role",
                )
                self._execute(
                    conn,
                    sql.SQL("COMMENT ON ROLE {} IS {}").format(
                        sql.Identifier(role), sql.Literal(OWNER_MARK + self._owner)
                    ),
                    f"{FIELD}.role",
                )
            self._execute(
                conn,
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(self._spec.group_role), sql.Identifier(role)),
                f"{FIELD}.groupRole",
            )

    def authenticate(self, credential: Credential) -> None:
        admin_dsn = self._admin_dsn
        conninfo = make_conninfo(
            admin_dsn.get_secret_value(),
            user=credential["username"].get_secret_value(),
            password=credential["password"].get_secret_value(),
            connect_timeout=CONNECT_TIMEOUT,
        )
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if _is_auth_failure(exc):
                raise TargetAuthFailed(
                    f"PostgreSQL {self._where} refused the login of role {self.reference(credential)}"
                ) from None
            raise TargetUnavailable(f"PostgreSQL {self._where} unreachable") from None

    def retire(self, old: Credential, keep: Credential) -> None:
        role = self._login_role(old)
        if role == self._login_role(keep):
            return  # a rotation that re-used the active role has nothing to retire
        with self._admin() as conn:
            if not self._claim(conn, role):
                return  # never created (or dropped by someone): nothing can log in as it
            self._execute(
                conn,
                sql.SQL("ALTER ROLE {} WITH NOLOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(_unknown_password())
                ),
                f"{FIELD}.role",
            )

    def reference(self, credential: Credential) -> str:
        return f"role {credential['username'].get_secret_value()}"

    # --- helpers -----------------------------------------------------------------------------
    def _login_role(self, credential: Credential) -> str:
        role = credential["username"].get_secret_value()
        if role not in self._spec.login_roles:
            # A store value from before the spec's role changed: never act on a role the spec
            # does not name.
            raise PermanentError(
                reasons.TARGET_NOT_OWNED,
                f"{FIELD}.role: the stored credential is for role {role!r}, not one of "
                f"{' or '.join(self._spec.login_roles)}",
            )
        return role

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        admin_dsn = self._admin_dsn
        conninfo = make_conninfo(admin_dsn.get_secret_value(), connect_timeout=CONNECT_TIMEOUT)
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            if _is_auth_failure(exc):
                raise PermanentError(
                    reasons.TARGET_AUTH_FAILED,
                    f"{FIELD}.connectionSecretRef: PostgreSQL {self._where} refused the admin login",
                ) from None
            raise TargetUnavailable(f"PostgreSQL {self._where} unreachable") from None
        except psycopg.Error:
            raise PermanentError(
                reasons.TARGET_INVALID,
                f"{FIELD}.connectionSecretRef: the admin connection URI is not usable",
            ) from None
        with conn:
            yield conn

    def _claim(self, conn: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
        """True if ``role`` exists and is ours to change; False if it does not exist; a refusal
        naming the field if it exists and is someone else's."""
        row = self._query(
            conn,
            "SELECT rolsuper, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            role,
        )
        if row is None:
            return False
        superuser, comment = row
        if superuser or comment != OWNER_MARK + self._owner:
            whose = "a superuser" if superuser else f"not marked {OWNER_MARK}{self._owner}"
            raise PermanentError(
                reasons.TARGET_NOT_OWNED,
                f"{FIELD}.role: role {role!r} exists and is {whose}; rotator only changes roles it created",
            )
        return True

    def _ensure_group(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if self._query(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", self._spec.group_role) is None:
            self._execute(
                conn,
                sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(self._spec.group_role)),
                f"{FIELD}.groupRole",
            )

    def _query(
        self, conn: psycopg.Connection[tuple[object, ...]], query: str, role: str
    ) -> tuple[object, ...] | None:
        try:
            return conn.execute(query, (role,)).fetchone()
        except psycopg.OperationalError:
            raise TargetUnavailable(f"PostgreSQL {self._where} connection lost") from None

    def _execute(
        self, conn: psycopg.Connection[tuple[object, ...]], statement: sql.Composed, field: str
    ) -> None:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            # The server's primary message ("permission denied to create role") quotes no value.
            raise PermanentError(
                reasons.TARGET_PRIVILEGES,
                f"{field}: the admin role of {FIELD}.connectionSecretRef lacks a privilege: "
                f"{exc.diag.message_primary}",
            ) from None
        except psycopg.OperationalError:
            raise TargetUnavailable(f"PostgreSQL {self._where} connection lost") from None
        except psycopg.Error as exc:
            raise PermanentError(
                reasons.TARGET_INVALID, f"{field}: PostgreSQL refused: {exc.diag.message_primary}"
            ) from None


def _is_auth_failure(exc: psycopg.OperationalError) -> bool:
    state = getattr(exc, "sqlstate", None)
    return state in _AUTH_STATES or "authentication failed" in str(exc)
