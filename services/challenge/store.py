"""Challenges, failure counting and owner tokens in Redis (no gRPC here).

A user is a subject (hwotp.subjects: a keyed hash of relying party and user
id), and every key of one subject carries it as its hash tag,
hwotp:{<subject>}:..., so that each script touches one Redis Cluster slot:

  fail           hash: consecutive failures, the last one's time, disabled
  rate           sorted set: issuance times in the sliding window
  step           present while the user is in step-up after a near miss
  pending        list: unanswered challenge ids, oldest first (at most max_pending)
  ch:<id>        the challenge (digits, expiry, step-up), TTL = its time limit
  chm:<id>       a marker that outlives it ("issued", "cancelled", "used") so that a
                 late answer is told EXPIRED and a second one ALREADY_USED
  own:<sha256>   an owner token (after an accepted login), single use, short TTL

A relying party's issuance rate lives under its own tag, hwotp:{c:<sha256>}:rate,
and is counted in a call of its own.

Every step is one Lua script, so one round trip and atomic across any number
of replicas: issuing checks the user's lockout and rate; claiming checks the
throttle again (challenges issued before the failures must not outrun it),
then consumes the challenge and counts a failure at once (a crash between
claim and decision still counts), which RecordSuccess undoes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import redis

from hwotp.outcomes import Claim, ClaimStatus, Issued, Lockout

# A marker must outlive its challenge only long enough to name a late or second
# answer; it is not a record of the challenge.
MARKER_GRACE_MS = 15 * 60 * 1000

# A caller's sliding-window rate: the issuance times in the window are the members'
# scores. KEYS[1] the log; ARGV: now, window_ms, limit. Returns the ms until a slot
# frees, 0 when one is free now. The issuance is added once the user's script issued.
_CALLER_RATE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then return 0 end
return tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) + window - now
"""

_CREATE = """
local state = redis.call('HMGET', KEYS[1], 'count', 'last_ms', 'disabled')
local now, count = tonumber(ARGV[1]), tonumber(state[1] or '0')
if state[3] == '1' then return {'disabled', 0, 0} end
local after = tonumber(ARGV[3])
if count >= after then
  local ready = tonumber(state[2] or '0') + tonumber(ARGV[2]) * (count - after + 1)
  if now < ready then return {'throttled', ready - now, 0} end
end
local window = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'rate', tonumber(oldest[2]) + window - now, 0}
end
redis.call('ZADD', KEYS[2], now, ARGV[14])
redis.call('PEXPIRE', KEYS[2], window)
-- stepped up: after a near miss (the step key), and while the failures throttle the user (until a success)
local length, fixed = tonumber(ARGV[9]), tonumber(ARGV[16])
local stepped = redis.call('EXISTS', KEYS[3]) == 1 or count >= after
if fixed > 0 then
  length = fixed
elseif stepped or ARGV[17] == '1' then
  length, stepped = math.min(tonumber(ARGV[11]), length + tonumber(ARGV[10])), true
end
-- at most max_pending unanswered challenges, oldest first: the oldest gives way
for _, id in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  if redis.call('EXISTS', ARGV[13] .. 'ch:' .. id) == 0 then redis.call('LREM', KEYS[4], 0, id) end
end
while redis.call('LLEN', KEYS[4]) >= tonumber(ARGV[15]) do
  local oldest = redis.call('LPOP', KEYS[4])
  redis.call('DEL', ARGV[13] .. 'ch:' .. oldest)
  redis.call('SET', ARGV[13] .. 'chm:' .. oldest, 'cancelled', 'KEEPTTL')
end
-- the signature: asked for ('with' the digits, or 'only'), or added by a step-up when enrolled
local signature = ARGV[18]
if signature == 'none' and stepped and ARGV[19] == '1' then signature = 'with' end
if signature == 'only' then length = 0 end
local record = cjson.encode({digits = string.sub(ARGV[6], 1, length), expires_at_ms = ARGV[12],
                             stepped_up = stepped, signature = signature ~= 'none'})
redis.call('SET', KEYS[5], record, 'PX', ARGV[7])
redis.call('SET', KEYS[6], 'issued', 'PX', ARGV[8])
redis.call('RPUSH', KEYS[4], ARGV[14])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
return {'created', length, stepped and 1 or 0, signature ~= 'none' and 1 or 0}
"""

_CLAIM = """
local stored = redis.call('GET', KEYS[1])
if not stored then
  local marker = redis.call('GET', KEYS[2])
  if marker == 'issued' or marker == 'cancelled' then return {'expired', '', 0, 0, 0} end
  if marker then return {'used', '', 0, 0, 0} end
  return {'unknown', '', 0, 0, 0}
end
local state = redis.call('HMGET', KEYS[3], 'count', 'last_ms', 'disabled')
if state[3] == '1' then return {'locked', '', 0, 1, 0} end
local record = cjson.decode(stored)
local length = string.len(record['digits'])
if record['signature'] then length = length + 1 end
local boxes = tonumber(ARGV[4])
if boxes > 0 and boxes ~= length then return {'wrong_length', tostring(length), 0, 0, 0} end
if record['signature'] and ARGV[7] ~= '1' then return {'signature_unfit', '', 0, 0, 0} end
local now, count, after = tonumber(ARGV[1]), tonumber(state[1] or '0'), tonumber(ARGV[5])
if count >= after then
  local ready = tonumber(state[2] or '0') + tonumber(ARGV[3]) * (count - after + 1)
  if now < ready then return {'throttled', '', 0, 0, ready - now} end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'used', 'KEEPTTL')
redis.call('LREM', KEYS[4], 0, ARGV[6])
count = redis.call('HINCRBY', KEYS[3], 'count', 1)
redis.call('HSET', KEYS[3], 'last_ms', ARGV[1])
local disabled = 0
if count >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], 'disabled', '1')
  disabled = 1
end
return {'claimed', stored, count, disabled, 0}
"""

# Takes back the failure a claim counted, and the disabling it may have caused.
_FORGIVE = """
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
if count > 0 then count = redis.call('HINCRBY', KEYS[1], 'count', -1) end
if count < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], 'disabled') end
return {count, redis.call('HGET', KEYS[1], 'disabled') == '1' and 1 or 0}
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
    stepup_decoy_rate: float = 0.0
    max_pending: int = 3
    owner_token_ttl_s: int = 300


@dataclass(frozen=True)
class Refused:
    """No challenge: why (disabled, throttled, rate) and for how long (ms)."""

    reason: str
    retry_after_ms: int


def random_digits(length: int = 10) -> str:
    """Distinct digits drawn with a CSPRNG (a secret shuffle, then the first `length`)."""
    pool = list("0123456789")
    for i in range(len(pool) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    return "".join(pool[:length])


def _now_ms() -> int:
    return int(time.time() * 1000)


def _prefix(subject: str) -> str:
    return f"hwotp:{{{subject}}}:"


def _token_key(subject: str, token: str) -> str:
    return f"{_prefix(subject)}own:{hashlib.sha256(token.encode()).hexdigest()}"


class ChallengeStore:
    def __init__(self, client: redis.Redis, limits: Limits = Limits(), clock: Callable[[], int] = _now_ms):
        self.client, self.limits, self.clock = client, limits, clock
        self._caller_rate = client.register_script(_CALLER_RATE)
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._forgive = client.register_script(_FORGIVE)

    def _decoy(self) -> bool:
        return secrets.randbelow(1_000_000) < self.limits.stepup_decoy_rate * 1_000_000

    def create(self, subject: str, length: int, time_limit_s: int, caller: str = "",
               fixed_length: int = 0, signature: str = "none", signature_enrolled: bool = False) -> Issued | Refused:
        """signature: "none", "with" the digits or "only"; with signature_enrolled a step-up adds it."""
        challenge_id = secrets.token_urlsafe(24)
        shuffled = random_digits()  # the script takes as many as the length it settles on
        now, limit_ms, window_ms = self.clock(), time_limit_s * 1000, self.limits.window_s * 1000
        # The caller's rate is checked before and counted after the user's script: it lives
        # in another slot. Concurrent issuance may overshoot it by the calls in flight.
        caller_key = f"hwotp:{{c:{hashlib.sha256(caller.encode()).hexdigest()}}}:rate"
        retry = self._caller_rate(keys=[caller_key], args=[now, window_ms, self.limits.per_caller])
        if retry:
            return Refused("rate", max(int(retry), 1))
        prefix = _prefix(subject)
        status, value, stepped, *signed = self._create(
            keys=[f"{prefix}fail", f"{prefix}rate", f"{prefix}step", f"{prefix}pending",
                  f"{prefix}ch:{challenge_id}", f"{prefix}chm:{challenge_id}"],
            args=[now, self.limits.delay_ms, self.limits.throttle_after, self.limits.per_user, window_ms,
                  shuffled, limit_ms, limit_ms + MARKER_GRACE_MS, length, self.limits.stepup_extra,
                  self.limits.stepup_max, now + limit_ms, prefix, challenge_id, self.limits.max_pending,
                  fixed_length, int(self._decoy()), signature, int(signature_enrolled)])
        if status != b"created":
            return Refused(status.decode(), max(int(value), 1))
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(caller_key, {challenge_id: now})
            pipe.pexpire(caller_key, window_ms)
            pipe.execute()
        return Issued(challenge_id, shuffled[: int(value)], now + limit_ms, time_limit_s, bool(stepped),
                      bool(signed[0]))

    def claim(self, challenge_id: str, subject: str, boxes: int = 0,
              last_box_fits_signature: bool = True) -> Claim:
        """boxes: the answer's box count, refused unless it fits (0: not checked); a challenge
        with a signature is refused unless its last box can be one (strokes, enough points)."""
        prefix = _prefix(subject)
        status, stored, failures, disabled, retry = self._claim(
            keys=[f"{prefix}ch:{challenge_id}", f"{prefix}chm:{challenge_id}", f"{prefix}fail", f"{prefix}pending"],
            args=[self.clock(), self.limits.disable_after, self.limits.delay_ms, boxes, self.limits.throttle_after,
                  challenge_id, int(last_box_fits_signature)])
        status = ClaimStatus(status.decode())
        if status is ClaimStatus.WRONG_LENGTH:
            return Claim(status, length=int(stored))
        if status is not ClaimStatus.CLAIMED:
            return Claim(status, disabled=bool(disabled), retry_after_ms=max(int(retry), 0))
        record = json.loads(stored)
        return Claim(status, record["digits"], int(record["expires_at_ms"]), int(failures),
                     int(failures) >= self.limits.throttle_after, bool(disabled), bool(record["stepped_up"]),
                     signature=bool(record.get("signature")))

    def lockout(self, subject: str) -> Lockout:
        count, disabled = self.client.hmget(f"{_prefix(subject)}fail", "count", "disabled")
        return Lockout(int(count or 0), disabled == b"1")

    def reset(self, subject: str) -> Lockout:
        """An administrator clears the failures; returns what was there."""
        key = f"{_prefix(subject)}fail"
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(key, "count", "disabled")
            pipe.delete(key)
            (count, disabled), _ = pipe.execute()
        return Lockout(int(count or 0), disabled == b"1")

    def succeed(self, subject: str, stepped_up: bool) -> str:
        """An accepted login: failures cleared (and step-up, after a stepped-up challenge);
        returns a fresh owner token."""
        token = secrets.token_urlsafe(32)
        prefix = _prefix(subject)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(f"{prefix}fail", *([f"{prefix}step"] if stepped_up else []))
            pipe.set(_token_key(subject, token), 1, ex=self.limits.owner_token_ttl_s)
            pipe.execute()
        return token

    def redeem(self, subject: str, token: str) -> bool:
        """Spend an owner token: True once, for the subject it was issued to, within its life."""
        return bool(token) and self.client.delete(_token_key(subject, token)) == 1

    def forgive(self, subject: str) -> Lockout:
        count, disabled = self._forgive(keys=[f"{_prefix(subject)}fail"], args=[self.limits.disable_after])
        return Lockout(int(count), bool(disabled))

    def forget(self, subject: str) -> int:
        """Everything of a deleted user but the markers and owner tokens, which expire
        within minutes on their own."""
        prefix = _prefix(subject)
        pending = [member.decode() for member in self.client.lrange(f"{prefix}pending", 0, -1)]
        return self.client.delete(*(f"{prefix}{kind}" for kind in ("fail", "rate", "step", "pending")),
                                  *(f"{prefix}ch:{challenge_id}" for challenge_id in pending))

    def step_up(self, subject: str) -> None:
        self.client.set(f"{_prefix(subject)}step", 1, ex=self.limits.stepup_ttl_s)
