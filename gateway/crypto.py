"""Encryption at rest (AES-256-GCM) for TOTP secrets, phone numbers and held cookies."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_VERSION = b"\x01"


class BadKey(ValueError):
    """The configured encryption key is unusable."""


class DecryptionFailed(ValueError):
    """Ciphertext was tampered with or made with another key."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


class Cipher:
    def __init__(self, key: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise BadKey("the encryption key is not valid urlsafe base64") from exc
        if len(raw) != 32:
            raise BadKey(
                f"the encryption key must be 32 bytes of urlsafe base64, not {len(raw)} bytes; "
                "make one with `gateway keygen`"
            )
        self._aead = AESGCM(raw)

    def encrypt(self, plaintext: str, context: str) -> str:
        """`context` binds the ciphertext to its use (e.g. the user), so it cannot be moved."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii")

    def decrypt(self, token: str, context: str) -> str:
        try:
            blob = base64.urlsafe_b64decode(token.encode("ascii"))
            if blob[:1] != _VERSION:
                raise DecryptionFailed("unknown ciphertext version")
            nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
            return self._aead.decrypt(nonce, sealed, context.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise DecryptionFailed("the stored value cannot be decrypted with this key") from exc
