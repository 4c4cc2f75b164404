"""Temporal payload encryption: AES-GCM with the key id in the metadata.

Every client and worker uses this codec (``authflow.temporal.connect``), so workflow
inputs, results, signals and failure messages are ciphertext in Temporal's history.
Keys come from ``CODEC_KEYS``; the first encrypts, every listed key still decrypts, so a
key can be rotated by prepending a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from authflow.security.crypto import seal, unseal

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"


class UnknownCodecKey(ValueError):
    pass


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Sequence[tuple[str, bytes]]) -> None:
        if not keyring:
            raise ValueError("the codec needs at least one key")
        self._current_id, self._current_key = keyring[0]
        self._keys = dict(keyring)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_META: self._current_id.encode()},
            data=seal(self._current_key, payload.SerializeToString()),
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding", b"") != ENCODING:
            return payload  # written before encryption was turned on
        key_id = payload.metadata.get(KEY_ID_META, b"").decode()
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownCodecKey(f"no codec key with id {key_id!r}")
        return Payload.FromString(unseal(key, payload.data))
