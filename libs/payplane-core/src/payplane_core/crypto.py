"""AES-GCM encryption of secrets at rest, with key rotation.

``ENCRYPTION_KEYS`` is a list: the first key encrypts, every key decrypts. Each ciphertext names
the key that made it (a short fingerprint), so rotation is: prepend a new key, re-encrypt the
stored values (``needs_rotation`` tells which), then drop the old key.

The configured keys are passphrases of any length; HKDF-SHA256 derives the 256-bit AES key.
Callers pass a ``context`` (for example ``"merchant:mer_…:webhook"``) that is authenticated
but not stored, so a ciphertext copied to another row or purpose does not decrypt.
"""

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"
_NONCE_BYTES = 12
_INFO = b"payplane-secretbox-v1"


class SecretBoxError(Exception):
    """A ciphertext could not be decrypted (unknown key, tampered, wrong context)."""


def _derive(passphrase: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        passphrase.encode()
    )


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"fingerprint:" + key).hexdigest()[:8]


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys or any(not k for k in keys):
            raise ValueError("at least one non-empty encryption key is required")
        derived = [_derive(k) for k in keys]
        self._primary = _fingerprint(derived[0])
        self._ciphers = {_fingerprint(k): AESGCM(k) for k in derived}

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._primary].encrypt(nonce, plaintext.encode(), context.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self._primary}.{blob}"

    def decrypt(self, token: str, *, context: str) -> str:
        try:
            version, fingerprint, blob = token.split(".", 2)
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except ValueError:
            raise SecretBoxError("malformed ciphertext") from None
        cipher = self._ciphers.get(fingerprint)
        if version != _VERSION or cipher is None:
            raise SecretBoxError("ciphertext made with an unknown key")
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SecretBoxError("ciphertext does not authenticate") from None
        return plain.decode()

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was not made with the current (first) key."""
        return token.split(".", 2)[1:2] != [self._primary]

    def reencrypt(self, token: str, *, context: str) -> str:
        return self.encrypt(self.decrypt(token, context=context), context=context)
