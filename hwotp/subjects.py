"""Who a user is: a keyed hash of (relying party, user id), the only user identity below the gateway.

Every piece of user state in Redis is keyed by the subject, so one relying
party's "alice" is not another's, and a copy of Redis cannot be reversed into
user ids by hashing guessed ids: that needs the server secret (HWOTP_SUBJECT_KEY).
The subject is also each user's Redis Cluster hash tag (`hwotp:{subject}:...`).

`python -m hwotp.subjects` prints a fresh key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys

from hwotp.config import ConfigError


def parse_key(spec: str) -> bytes:
    try:
        key = base64.b64decode(spec, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError("HWOTP_SUBJECT_KEY must be base64 of 32 bytes (python -m hwotp.subjects makes one)")
    return key


class Subjects:
    def __init__(self, key: bytes):
        self.key = key

    def of(self, caller: str, user_id: str) -> str:
        # Neither a caller name nor a user id holds a newline: the pair is unambiguous.
        return hmac.new(self.key, f"{caller}\n{user_id}".encode(), hashlib.sha256).hexdigest()[:40]


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


if __name__ == "__main__":
    sys.stdout.write(new_key() + "\n")
