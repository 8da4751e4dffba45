"""rotator.tenancy.identity: no token is ever minted for an audience the API server accepts.

A store's author chooses the audiences and the address a minted token goes to; a token for the
Kubernetes API server's own audience would be a Kubernetes credential of the namespace's service
account. The pure half (the JWT's ``aud``, the refusal, the in-pod token) is tested here;
learning the audiences from the API server and minting, in tests/integration/test_store_readiness.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rotator.models import PermanentError, reasons
from rotator.tenancy.identity import (
    KNOWN_API_AUDIENCES,
    ApiAudiences,
    check_audiences,
    token_audiences,
)

WHERE = "RotationStore/vault spec.vault.auth.kubernetes.audiences"


def jwt(claims: object) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join((part(b'{"alg":"RS256"}'), part(json.dumps(claims).encode()), part(b"signature")))


@pytest.mark.parametrize(
    ("token", "audiences"),
    [
        (jwt({"aud": ["https://issuer.example", "api"]}), {"https://issuer.example", "api"}),
        (jwt({"aud": "https://issuer.example"}), {"https://issuer.example"}),
        (jwt({"sub": "no aud"}), set()),
        (jwt(["not", "an", "object"]), set()),
        ("an opaque token", set()),
        ("a.b!!.c", set()),
    ],
)
def test_the_aud_claim_is_read_from_a_jwt(token: str, audiences: set[str]) -> None:
    assert token_audiences(token) == audiences


def test_an_empty_audience_list_is_refused_naming_the_field() -> None:
    with pytest.raises(PermanentError) as refused:
        check_audiences((), KNOWN_API_AUDIENCES, WHERE)
    assert refused.value.reason == reasons.STORE_INVALID
    assert str(refused.value).startswith(f"{WHERE}: must name at least one audience")


def test_an_audience_of_the_api_server_is_refused_naming_it() -> None:
    with pytest.raises(PermanentError) as refused:
        check_audiences(("vault", "https://issuer.example"), {"https://issuer.example"}, WHERE)
    assert refused.value.reason == reasons.STORE_INVALID
    assert str(refused.value).startswith(
        f"{WHERE}: https://issuer.example is an audience of the Kubernetes API server"
    )


def test_other_audiences_pass() -> None:
    check_audiences(("vault", "sts.amazonaws.com"), KNOWN_API_AUDIENCES, WHERE)


def test_the_in_pod_token_says_the_api_servers_audiences(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(jwt({"aud": ["https://oidc.eks.example/id/ABC"]}) + "\n")
    known = ApiAudiences(token_file=token_file).known()
    assert known == KNOWN_API_AUDIENCES | {"https://oidc.eks.example/id/ABC"}
    assert ApiAudiences(token_file=tmp_path / "absent").known() == KNOWN_API_AUDIENCES
