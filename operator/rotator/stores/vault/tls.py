"""A Vault server's TLS as the store's admin configures it: ``spec.vault.caBundle``.

Two failures need a message that says what to fix, because requests reports both as an
``SSLError`` whose text is a connection pool's (and may quote the request, so it is never
shown):

- the bundle is not PEM certificates (a key, a truncated paste): refused before any request,
  naming the field (``check_ca_file``);
- the server's certificate does not verify against what the client trusts (no bundle set and
  a private CA, or the bundle of another CA): OpenSSL's verdict and the field to set
  (``untrusted_certificate``, ``verification_failed``).
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Final

CA_BUNDLE_FIELD: Final = "spec.vault.caBundle"

_OPENSSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)")


def check_ca_file(path: Path) -> str | None:
    """Why OpenSSL cannot load ``path`` as trusted CA certificates (as requests will), or None."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        return _OPENSSL_SOURCE.sub("", str(exc)) or type(exc).__name__
    return None


def untrusted_certificate(exc: BaseException) -> str | None:
    """OpenSSL's verdict when ``exc`` (a requests or urllib3 failure) is a certificate that did
    not verify, e.g. "unable to get local issuer certificate"; None for any other failure."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or "certificate verify failed")
        # requests wraps urllib3's MaxRetryError (in args), which holds the SSLError (reason).
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return None


def verification_failed(verdict: str, bundle_set: bool | None) -> str:
    """The message for a certificate that did not verify, naming the field to fix;
    ``bundle_set``: whether the store sets a bundle (None where the caller cannot tell)."""
    failed = f"TLS certificate verification failed ({verdict})"
    if bundle_set is None:
        return f"{failed}: the store's {CA_BUNDLE_FIELD} must hold the CA that signed Vault's certificate"
    if bundle_set:
        return f"{failed}: {CA_BUNDLE_FIELD} does not hold the CA that signed Vault's certificate"
    return (
        f"{failed}: {CA_BUNDLE_FIELD} is not set; set it to the PEM of the CA that signed Vault's certificate"
    )
