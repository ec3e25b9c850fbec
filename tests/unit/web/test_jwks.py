"""Tokens checked against an identity provider's JWKS (its document given to PyJWKClient as fetched)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from services.web.auth import AuthError, Verifier
from tests.unit.web.fakes import AUDIENCE, ISSUER, KEY, OTHER_KEY, token

EC_KEY = generate_private_key(SECP256R1())


def jwks() -> dict[str, Any]:
    okp = OKPAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    ec = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    return {"keys": [{**okp, "kid": "ed-1", "use": "sig", "alg": "EdDSA"},
                     {**ec, "kid": "ec-1", "use": "sig", "alg": "ES256"}]}


@pytest.fixture
def verifier() -> Verifier:
    v = Verifier(jwks_url="https://idp.test/.well-known/jwks.json", issuer=ISSUER, audience=AUDIENCE)
    assert v.jwks is not None
    v.jwks.fetch_data = jwks  # type: ignore[method-assign]  # what the URL would answer
    return v


def signed(kid: str, key: Any = KEY, algorithm: str = "EdDSA") -> str:
    claims = jwt.decode(token(key=key, algorithm=algorithm), options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


async def test_a_token_of_a_published_key_is_accepted(verifier: Verifier) -> None:
    caller = await verifier.verify(signed("ed-1"))
    assert caller.tenant == "pharma-1" and caller.role == "pharmacy"
    assert (await verifier.verify(signed("ec-1", EC_KEY, "ES256"))).tenant == "pharma-1"


@pytest.mark.parametrize(("kid", "key", "algorithm"), [
    ("ed-1", OTHER_KEY, "EdDSA"),    # the kid of a published key, signed by another
    ("unknown", KEY, "EdDSA"),       # a kid the provider never published
    ("ec-1", KEY, "EdDSA"),          # a published EC key named by an EdDSA token
])
async def test_a_token_the_jwks_does_not_vouch_for_is_refused(verifier: Verifier, kid: str, key: Any,
                                                               algorithm: str) -> None:
    with pytest.raises(AuthError) as refused:
        await verifier.verify(signed(kid, key, algorithm))
    assert refused.value.status == 401
