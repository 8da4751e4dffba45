"""The `password` credential: a random string, valid wherever the consumer compares it.

There is no target system to create it in, so "dual" (old and new both valid) holds by
construction: consumers accept whichever value they were started with.
"""

from __future__ import annotations

import secrets
import string
from typing import Final

from pydantic import SecretStr

ALPHABETS: Final[dict[str, str]] = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    # Printable ASCII without quotes, backslash and space: values survive shells and URLs.
    "ascii-printable": "".join(c for c in string.printable[:94] if c not in "\"'`\\ "),
}


def generate_password(length: int, alphabet: str) -> SecretStr:
    """A uniformly random password from a CSPRNG; the caller never sees it unwrapped by accident."""
    characters = ALPHABETS[alphabet]
    return SecretStr("".join(secrets.choice(characters) for _ in range(length)))
