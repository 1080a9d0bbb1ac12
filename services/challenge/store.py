"""Challenges and failure counting in Redis (no gRPC here).

A challenge lives under hwotp:ch:<id> with a TTL equal to its time limit. A
marker hwotp:chm:<id> outlives it ("issued", then "used") so that a late
answer is told EXPIRED and a second one ALREADY_USED rather than UNKNOWN.

Every step is one Lua script, so one round trip and atomic across any number
of replicas: issuing checks the user's lockout and the rate limits; claiming
consumes the challenge and counts a failure for its user at once (a crash
between claim and decision still counts), which RecordSuccess undoes. A user
in step-up (after a near miss, hwotp:step:<h>) gets longer challenges until a
success on one of them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import redis

MARKER_TTL_MS = 24 * 3600 * 1000

_CREATE = """
local state = redis.call('HMGET', KEYS[1], 'count', 'last_ms', 'disabled')
local now, count = tonumber(ARGV[1]), tonumber(state[1] or '0')
if state[3] == '1' then return {'disabled', 0, 0} end
local after = tonumber(ARGV[3])
if count >= after then
  local ready = tonumber(state[2] or '0') + tonumber(ARGV[2]) * (count - after + 1)
  if now < ready then return {'throttled', ready - now, 0} end
end
for i, limit in ipairs({tonumber(ARGV[4]), tonumber(ARGV[5])}) do
  local used = redis.call('INCR', KEYS[1 + i])
  if used == 1 then redis.call('PEXPIRE', KEYS[1 + i], ARGV[6]) end
  if used > limit then return {'rate', redis.call('PTTL', KEYS[1 + i]), 0} end
end
local length, stepped = tonumber(ARGV[10]), false
if redis.call('EXISTS', KEYS[6]) == 1 then
  length, stepped = math.min(tonumber(ARGV[12]), length + tonumber(ARGV[11])), true
end
local record = cjson.encode({user = ARGV[13], digits = string.sub(ARGV[7], 1, length),
                             expires_at_ms = ARGV[14], stepped_up = stepped})
redis.call('SET', KEYS[4], record, 'PX', ARGV[8])
redis.call('SET', KEYS[5], 'issued', 'PX', ARGV[9])
return {'created', length, stepped and 1 or 0}
"""

_CLAIM = """
local stored = redis.call('GET', KEYS[1])
if not stored then
  local marker = redis.call('GET', KEYS[2])
  if marker == 'issued' then return {'expired', '', 0, 0} end
  if marker then return {'used', '', 0, 0} end
  return {'unknown', '', 0, 0}
end
if cjson.decode(stored)['user'] ~= ARGV[1] then return {'unknown', '', 0, 0} end
if redis.call('HGET', KEYS[3], 'disabled') == '1' then return {'locked', '', 0, 1} end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'used', 'KEEPTTL')
local count = redis.call('HINCRBY', KEYS[3], 'count', 1)
redis.call('HSET', KEYS[3], 'last_ms', ARGV[2])
local disabled = 0
if count >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[3], 'disabled', '1')
  disabled = 1
end
return {'claimed', stored, count, disabled}
"""


@dataclass(frozen=True)
class Limits:
    throttle_after: int = 5
    delay_ms: int = 30000
    disable_after: int = 50
    window_s: int = 60
    per_user: int = 10
    per_caller: int = 6000
    stepup_extra: int = 2
    stepup_max: int = 10
    stepup_ttl_s: int = 86400


@dataclass(frozen=True)
class Issued:
    challenge_id: str
    digits: str
    expires_at_ms: int
    time_limit_s: int
    stepped_up: bool = False


@dataclass(frozen=True)
class Refused:
    """No challenge: why (disabled, throttled, rate) and for how long (ms)."""

    reason: str
    retry_after_ms: int


@dataclass(frozen=True)
class Claim:
    status: str  # claimed | unknown | expired | used | locked
    digits: str = ""
    expires_at_ms: int = 0
    failures: int = 0
    disabled: bool = False
    stepped_up: bool = False


@dataclass(frozen=True)
class Lockout:
    failures: int
    disabled: bool


def random_digits(length: int = 10) -> str:
    """Distinct digits drawn with a CSPRNG (a secret shuffle, then the first `length`)."""
    pool = list("0123456789")
    for i in range(len(pool) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    return "".join(pool[:length])


def _hashed(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChallengeStore:
    def __init__(self, client: redis.Redis, limits: Limits = Limits()):
        self.client, self.limits = client, limits
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)

    def create(self, user_id: str, length: int, time_limit_s: int, caller: str = "") -> Issued | Refused:
        challenge_id = secrets.token_urlsafe(24)
        shuffled = random_digits()  # the script takes as many as the length it settles on
        now, limit_ms, window_ms = _now_ms(), time_limit_s * 1000, self.limits.window_s * 1000
        window = now // window_ms
        user = _hashed(user_id)
        status, value, stepped = self._create(
            keys=[f"hwotp:fail:{user}", f"hwotp:rate:u:{user}:{window}", f"hwotp:rate:c:{_hashed(caller)}:{window}",
                  f"hwotp:ch:{challenge_id}", f"hwotp:chm:{challenge_id}", f"hwotp:step:{user}"],
            args=[now, self.limits.delay_ms, self.limits.throttle_after, self.limits.per_user,
                  self.limits.per_caller, window_ms, shuffled, limit_ms, MARKER_TTL_MS, length,
                  self.limits.stepup_extra, self.limits.stepup_max, user_id, now + limit_ms])
        if status != b"created":
            return Refused(status.decode(), max(int(value), 1))
        return Issued(challenge_id, shuffled[: int(value)], now + limit_ms, time_limit_s, bool(stepped))

    def claim(self, challenge_id: str, user_id: str) -> Claim:
        status, stored, failures, disabled = self._claim(
            keys=[f"hwotp:ch:{challenge_id}", f"hwotp:chm:{challenge_id}", f"hwotp:fail:{_hashed(user_id)}"],
            args=[user_id, _now_ms(), self.limits.disable_after])
        status = status.decode()
        if status != "claimed":
            return Claim(status, disabled=bool(disabled))
        record = json.loads(stored)
        return Claim(status, record["digits"], int(record["expires_at_ms"]), int(failures), bool(disabled),
                     bool(record["stepped_up"]))

    def lockout(self, user_id: str) -> Lockout:
        count, disabled = self.client.hmget(f"hwotp:fail:{_hashed(user_id)}", "count", "disabled")
        return Lockout(int(count or 0), disabled == b"1")

    def reset(self, user_id: str, end_step_up: bool = False) -> Lockout:
        """Clear the failures (a success, or an administrator), and step-up with it when asked;
        returns what was there."""
        user = _hashed(user_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(f"hwotp:fail:{user}", "count", "disabled")
            pipe.delete(f"hwotp:fail:{user}", *([f"hwotp:step:{user}"] if end_step_up else []))
            (count, disabled), _ = pipe.execute()
        return Lockout(int(count or 0), disabled == b"1")

    def step_up(self, user_id: str) -> None:
        self.client.set(f"hwotp:step:{_hashed(user_id)}", 1, ex=self.limits.stepup_ttl_s)
