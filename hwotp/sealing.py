"""Data at rest in Redis, sealed with AES-GCM (the `cryptography` package).

A sealed blob is: version byte, key id (1 byte length + ascii), 12-byte nonce,
ciphertext with its tag. The key id lets keys rotate: new data is sealed with
the current key, older blobs open with whichever listed key they name. The
associated data binds a blob to its owner and purpose, so a blob copied to
another user's key does not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hwotp.config import ConfigError

_VERSION = b"\x01"


class SealError(Exception):
    """A blob cannot be opened: unknown key id, wrong key, or tampered with."""


class Sealer:
    def __init__(self, keys: dict[str, bytes], current: str):
        if current not in keys:
            raise ConfigError(f"template key id {current!r} is not among HWOTP_TEMPLATE_KEYS")
        self.keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current

    @classmethod
    def from_settings(cls, spec: str, current: str) -> "Sealer":
        """spec: comma-separated kid:base64(32-byte key); current: the kid new data is sealed with."""
        keys = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kid, _, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError:
                key = b""
            if not kid or len(kid) > 32 or len(key) != 32:
                raise ConfigError(f"HWOTP_TEMPLATE_KEYS entry {kid or item!r} must be kid:<base64 of 32 bytes>")
            keys[kid] = key
        if not keys:
            raise ConfigError("HWOTP_TEMPLATE_KEYS is empty: templates must be encrypted at rest")
        return cls(keys, current or next(iter(keys)))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        kid = self.current.encode()
        return _VERSION + bytes([len(kid)]) + kid + nonce + self.keys[self.current].encrypt(nonce, plaintext, context)

    def open(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < 2 or blob[:1] != _VERSION:
            raise SealError("not a sealed blob")
        size = blob[1]
        kid, nonce, body = blob[2 : 2 + size].decode(errors="replace"), blob[2 + size : 14 + size], blob[14 + size :]
        if kid not in self.keys:
            raise SealError(f"sealed with key {kid!r}, which is not configured")
        try:
            return self.keys[kid].decrypt(nonce, body, context)
        except InvalidTag:
            raise SealError("blob does not open: wrong key or tampered") from None

    def key_id_of(self, blob: bytes) -> str:
        return blob[2 : 2 + blob[1]].decode(errors="replace")


def new_key_entry(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2 or not sys.argv[1].isidentifier():
        raise SystemExit("usage: python -m hwotp.sealing KID   (prints a HWOTP_TEMPLATE_KEYS entry)")
    print(new_key_entry(sys.argv[1]))
