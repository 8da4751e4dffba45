"""What the managed Secret carries for a credential: pure, from the spec and the credential.

``secret.key`` holds the password, ``secret.usernameKey`` the user name (credentials that have
one), ``secret.previousKey`` the previous password while the old credential is still valid, and
each ``secret.template`` entry is rendered from the new credential's fields. For an
``awsIamAccessKey`` the secret access key takes the password's place and the access key id the
user name's (``CredentialSpec.secret_field`` / ``name_field``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

from pydantic import SecretStr

from rotator.models.spec import RotationPolicySpec
from rotator.targets.credential import Credential

_ACTION = re.compile(r"\{\{\s*\.([a-zA-Z]+)\s*(\|\s*urlquery\s*)?\}\}")


def render(template: str, credential: Credential) -> SecretStr:
    """``{{ .field }}`` and ``{{ .field | urlquery }}`` (validated with the spec, see
    ``rotator.models.spec.template_problem``)."""

    def field(match: re.Match[str]) -> str:
        value = credential[match.group(1)].get_secret_value()
        return urllib.parse.quote(value, safe="") if match.group(2) else value

    return SecretStr(_ACTION.sub(field, template))


def secret_values(
    spec: RotationPolicySpec, credential: Credential, previous: Credential | None = None
) -> dict[str, SecretStr]:
    secret, kind = spec.secret, spec.credential
    values: dict[str, SecretStr] = {secret.key: credential[kind.secret_field]}
    if kind.name_field is not None and kind.name_field in credential:
        values[secret.username_key] = credential[kind.name_field]
    if secret.previous_key and previous is not None:
        values[secret.previous_key] = previous[kind.secret_field]
    for key, template in secret.template.items():
        values[key] = render(template, credential)
    return values


def settled_keys(spec: RotationPolicySpec) -> frozenset[str]:
    """The data keys of a settled Secret (no rotation running: no previousKey)."""
    keys = {spec.secret.key, *spec.secret.template}
    if spec.credential.name_field is not None:
        keys.add(spec.secret.username_key)
    return frozenset(keys)


def values_equal(left: Mapping[str, SecretStr], right: Mapping[str, SecretStr]) -> bool:
    return left.keys() == right.keys() and all(
        left[k].get_secret_value() == right[k].get_secret_value() for k in left
    )
