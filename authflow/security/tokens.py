"""Access tokens (JWT, HS256 only) and opaque refresh tokens."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from authflow.errors import InvalidToken
from authflow.security.crypto import sha256_hex

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud", "typ"]


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
