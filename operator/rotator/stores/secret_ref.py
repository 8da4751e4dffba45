"""Reading a static credential (a Vault token, an AWS key) out of a Kubernetes Secret.

Shared by the auth methods of every store: the same refusals, naming the field and the Secret,
and never an echo of what the Secret holds (a malformed value would end up in an HTTP header or a
signed request, and from there in error text).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from rotator.models import CredentialSecretUnusable, reasons


def single_line_value(where: str, secret: Mapping[str, Any] | None, key: str, what: str) -> str:
    """The value under ``key``, as one line of printable text; a StoreAuthMissing refusal otherwise.

    ``where`` names the store, the field and the Secret
    (``RotationStore/vault spec.vault.auth.tokenSecretRef: Secret ns/name``); ``what`` says what
    the value should be ("Vault token", "AWS key").
    """
    if secret is None:
        raise CredentialSecretUnusable(reasons.STORE_AUTH_MISSING, f"{where} not found")
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        raise CredentialSecretUnusable(reasons.STORE_AUTH_MISSING, f"{where} has no key {key!r}")
    text = base64.b64decode(encoded).decode(errors="replace").strip()
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise CredentialSecretUnusable(
            reasons.STORE_AUTH_MISSING, f"{where} key {key!r} does not hold a single-line {what}"
        )
    return text
