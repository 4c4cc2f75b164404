"""Access tokens (JWT, HS256 only) and opaque refresh tokens."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from authflow.errors import InvalidToken
from authflow.security.crypto import sha256_hex

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud", "typ"]
# Verified tokens kept per process (see ``TokenService.decode_access``): about one per
# learner active in the last minutes; each entry is a token string and its claims.
VERIFIED_KEPT = 4096


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    issued_at: int
    expires_at: int


class TokenService:
    def __init__(self, secret: str, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue_access(self, user_id: str, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "iss": self.issuer,
            "aud": self.audience,
            "typ": "access",
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token; ``InvalidToken`` otherwise.

        A token verified before is not verified again while it lives: PyJWT's decode
        (parsing, HMAC, claim checks) was a tenth of an authenticated request's CPU,
        and a learner sends the same token every few seconds.  The cache is keyed by
        the whole token, signature included, so only the exact bytes that passed
        verification hit it, and its expiry is checked on every use as PyJWT checks it
        (expired once ``exp`` is not after now).  Whether the session is still live
        is not the token's business: the database says so on every request."""
        kept = self._verified.get(token)
        if kept is not None:
            if kept.expires_at <= time.time():
                self._verified.pop(token, None)
                raise InvalidToken()
            self._verified.move_to_end(token)
            return kept
        claims = self._decode(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # pinned: "none" and every other algorithm refused
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            # Not only PyJWT's own errors: a malformed claim may surface as a
            # conversion error, and a bad token must never become a 500.
            raise InvalidToken() from exc
        if claims.get("typ") != "access":
            raise InvalidToken()
        sub, sid = claims.get("sub"), claims.get("sid")
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise InvalidToken()
        try:
            return AccessClaims(sub, sid, int(claims["iat"]), int(claims["exp"]))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidToken() from exc


def new_refresh_token() -> tuple[str, str]:
    """(token, sha256 hex): 256 bits from ``secrets``; only the hash is stored."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def hash_refresh_token(token: str) -> str:
    return sha256_hex(token)
