"""Access tokens (JWT HS256) and opaque refresh tokens, without the stack."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from authflow.errors import InvalidToken
from authflow.security import tokens
from authflow.security.tokens import (
    REQUIRED_CLAIMS,
    TokenService,
    hash_refresh_token,
    new_refresh_token,
)

SECRET = "unit-test-secret-" + "x" * 48
ISS, AUD = "authflow", "authflow-api"


@pytest.fixture
def service() -> TokenService:
    return TokenService(SECRET, issuer=ISS, audience=AUD, ttl_seconds=900)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "sid": "session-1",
        "iat": now,
        "exp": now + 600,
        "iss": ISS,
        "aud": AUD,
        "typ": "access",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def sign(payload: dict[str, Any], *, key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_issue_and_decode_round_trip(service: TokenService) -> None:
    token = service.issue_access("user-1", "session-1")
    decoded = service.decode_access(token)
    assert (decoded.user_id, decoded.session_id) == ("user-1", "session-1")
    assert decoded.expires_at - decoded.issued_at == 900
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)
    assert set(REQUIRED_CLAIMS) <= set(payload)


def test_hand_made_valid_token_is_accepted(service: TokenService) -> None:
    """The control for every refusal below: the same construction, nothing broken."""
    assert service.decode_access(sign(claims())).user_id == "user-1"


def _tampered(token: str) -> str:
    head, body, sig = token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return f"{head}.{body}.{flipped}"


def _alg_none(payload: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def _body_swapped(token: str) -> str:
    """The signature of one payload on another."""
    head, _, sig = token.split(".")
    other = b64(json.dumps(claims(sub="admin")).encode())
    return f"{head}.{other}.{sig}"


def _missing(claim: str) -> Callable[[], str]:
    """A token otherwise valid, without ``claim``."""
    return lambda: sign(claims(**{claim: ...}))


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "tampered_signature": lambda: _tampered(sign(claims())),
    "payload_swapped": lambda: _body_swapped(sign(claims())),
    "alg_none": lambda: _alg_none(claims()),
    "alg_none_with_signature": lambda: _alg_none(claims()) + "c2ln",
    "hs512_same_secret": lambda: sign(claims(), alg="HS512"),
    "hs384_same_secret": lambda: sign(claims(), alg="HS384"),
    "other_secret": lambda: sign(claims(), key="another-secret-" + "y" * 40),
    "wrong_audience": lambda: sign(claims(aud="someone-else")),
    "wrong_issuer": lambda: sign(claims(iss="evil")),
    "expired": lambda: sign(claims(iat=int(time.time()) - 1000, exp=int(time.time()) - 10)),
    "issued_in_the_future": lambda: sign(claims(iat=int(time.time()) + 3600)),
    "typ_refresh": lambda: sign(claims(typ="refresh")),
    "sub_not_a_string": lambda: sign(claims(sub=42)),
    "sid_not_a_string": lambda: sign(claims(sid=["a"])),
    "exp_not_a_number": lambda: sign(claims(exp="tomorrow")),
    "exp_infinite": lambda: sign(claims(exp=1e400)),
    "refresh_token": lambda: new_refresh_token()[0],
    "empty": lambda: "",
    "garbage": lambda: "not.a.jwt",
    "two_parts": lambda: ".".join(sign(claims()).split(".")[:2]),
    **{f"missing_{claim}": _missing(claim) for claim in REQUIRED_CLAIMS},
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_misused_tokens_are_refused(service: TokenService, name: str) -> None:
    token = BAD_TOKENS[name]()
    with pytest.raises(InvalidToken):
        service.decode_access(token)


def test_required_claims_cover_the_contract() -> None:
    assert {"exp", "iat", "sub", "sid", "iss", "aud", "typ"} <= set(REQUIRED_CLAIMS)


def test_refresh_tokens_are_random_and_only_hashed() -> None:
    tokens = {new_refresh_token() for _ in range(50)}
    assert len({t for t, _ in tokens}) == 50
    for token, digest in tokens:
        assert len(token) >= 43  # 256 bits, url-safe base64
        assert digest == hash_refresh_token(token)
        assert token not in digest


def test_a_verified_token_is_not_verified_again_but_its_forgeries_are(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign(claims())
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting(encoded: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(encoded)
        return real_decode(encoded, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    assert service.decode_access(token).user_id == "user-1"
    assert service.decode_access(token).user_id == "user-1"
    assert decodes == [token]  # the second came from the cache
    for forged in (_tampered(token), _body_swapped(token), token + "x"):
        with pytest.raises(InvalidToken):
            service.decode_access(forged)
    assert len(decodes) == 4  # each forgery went through PyJWT


def test_a_kept_token_expires_when_its_exp_says(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    token = sign(claims(iat=now, exp=now + 60))
    assert service.decode_access(token).expires_at == now + 60
    monkeypatch.setattr("authflow.security.tokens.time.time", lambda: now + 59.9)
    assert service.decode_access(token).user_id == "user-1"
    monkeypatch.setattr("authflow.security.tokens.time.time", lambda: now + 60)
    with pytest.raises(InvalidToken):  # exp is not after now
        service.decode_access(token)
    assert token not in service._verified  # (PyJWT's own expiry: BAD_TOKENS["expired"])


def test_the_kept_tokens_are_bounded(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_KEPT", 2)
    issued = [sign(claims(sub=f"user-{i}")) for i in range(3)]
    for token in issued:
        service.decode_access(token)
    assert list(service._verified) == issued[1:]  # the least recently used went
