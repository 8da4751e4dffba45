"""A credential's fields, and how they travel inside one store value.

A ``password`` credential is stored as the bare password, as it always was (readers of the
store's "latest" see the password itself). A credential with several fields (``postgresRole``:
username and password) is stored as one JSON object, the format AWS documents for database
secrets in Secrets Manager (``{"username": ..., "password": ...}``), in KV v2 under ``value``;
``vaultDatabase`` adds ``leaseId``, the reference its lease is renewed and revoked by.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import SecretStr

from rotator.models.spec import CredentialKind

Credential = Mapping[str, SecretStr]
"""Field name -> value; never logged (SecretStr)."""


class CredentialFormatError(ValueError):
    """A stored value that is not a credential of the policy's kind (written by someone else, or
    before the policy's credential kind changed). Names the kind, never the value."""


def encode_credential(kind: CredentialKind, credential: Credential) -> SecretStr:
    if kind is CredentialKind.PASSWORD:
        return credential["password"]
    return SecretStr(json.dumps({k: v.get_secret_value() for k, v in sorted(credential.items())}))


def decode_credential(kind: CredentialKind, value: SecretStr, fields: tuple[str, ...]) -> Credential:
    if kind is CredentialKind.PASSWORD:
        return {"password": value}
    try:
        document = json.loads(value.get_secret_value())
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(isinstance(document.get(f), str) for f in fields):
        # The message must not quote the value: it is a credential, or close to one.
        raise CredentialFormatError(
            f"the stored value is not a {kind} credential (a JSON object with {', '.join(fields)})"
        )
    # Further string fields ride along (``vaultDatabase``: ``leaseId``, a reference the target
    # needs to renew and revoke); the Secret only ever carries the fields the shape names.
    return {k: SecretStr(v) for k, v in document.items() if isinstance(v, str)}
