"""One-time codes: drawn from ``secrets``, stored only as a keyed hash, sealed for sending.

The code is bound to its delivery record's id in both the hash and the seal, so a
hash or sealed value copied onto another record is worthless.
"""

from __future__ import annotations

import secrets

from authflow.security.crypto import constant_time_equals, keyed_hash, seal, unseal


def generate_code(length: int = 6) -> str:
    """``length`` decimal digits, uniformly drawn; leading zeros kept."""
    return f"{secrets.randbelow(10**length):0{length}d}"


class CodeVault:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, delivery_id: str, code: str) -> str:
        return keyed_hash(self._key, "otp", delivery_id, code)

    def matches(self, delivery_id: str, code: str, code_hash: str) -> bool:
        return constant_time_equals(self.hash(delivery_id, code), code_hash)

    def seal(self, delivery_id: str, code: str) -> bytes:
        return seal(self._key, code.encode(), delivery_id.encode())

    def unseal(self, delivery_id: str, sealed: bytes) -> str:
        return unseal(self._key, sealed, delivery_id.encode()).decode()

    def email_key(self, scope: str, email: str) -> str:
        """Throttle key for an address: a keyed hash, so unknown addresses are not stored."""
        return f"{scope}:{keyed_hash(self._key, 'email', email)[:40]}"
