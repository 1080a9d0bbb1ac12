"""Challenges in Redis (no gRPC here).

A challenge lives under hwotp:ch:<id> with a TTL equal to its time limit. A
marker hwotp:chm:<id> outlives it ("issued", then "used") so that a late
answer is told EXPIRED and a second one ALREADY_USED rather than UNKNOWN.
Claiming is one Lua script, hence atomic: of any number of concurrent
submissions exactly one gets the challenge.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import redis

MARKER_TTL_MS = 24 * 3600 * 1000

_CLAIM = """
local stored = redis.call('GET', KEYS[1])
if not stored then
  local marker = redis.call('GET', KEYS[2])
  if marker == 'issued' then return {'expired', ''} end
  if marker then return {'used', ''} end
  return {'unknown', ''}
end
if cjson.decode(stored)['user'] ~= ARGV[1] then return {'unknown', ''} end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'used', 'KEEPTTL')
return {'claimed', stored}
"""


@dataclass(frozen=True)
class Issued:
    challenge_id: str
    digits: str
    expires_at_ms: int
    time_limit_s: int


@dataclass(frozen=True)
class Claim:
    status: str  # claimed | unknown | expired | used
    digits: str = ""
    expires_at_ms: int = 0


def random_digits(length: int) -> str:
    """Distinct digits drawn with a CSPRNG (a secret shuffle, then the first `length`)."""
    pool = list("0123456789")
    for i in range(len(pool) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    return "".join(pool[:length])


class ChallengeStore:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._claim = client.register_script(_CLAIM)

    def create(self, user_id: str, length: int, time_limit_s: int) -> Issued:
        challenge_id = secrets.token_urlsafe(24)
        digits = random_digits(length)
        limit_ms = time_limit_s * 1000
        expires_at_ms = int(time.time() * 1000) + limit_ms
        record = json.dumps({"user": user_id, "digits": digits, "expires_at_ms": expires_at_ms})
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(f"hwotp:ch:{challenge_id}", record, px=limit_ms)
            pipe.set(f"hwotp:chm:{challenge_id}", "issued", px=MARKER_TTL_MS)
            pipe.execute()
        return Issued(challenge_id, digits, expires_at_ms, time_limit_s)

    def claim(self, challenge_id: str, user_id: str) -> Claim:
        status, stored = self._claim(keys=[f"hwotp:ch:{challenge_id}", f"hwotp:chm:{challenge_id}"], args=[user_id])
        status = status.decode()
        if status != "claimed":
            return Claim(status)
        record = json.loads(stored)
        return Claim(status, record["digits"], int(record["expires_at_ms"]))
