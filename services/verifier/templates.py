"""Enrolment templates and replay fingerprints in Redis (no gRPC here).

A user is a subject (hwotp.subjects: a keyed hash of relying party and user
id), and every key of one subject carries it as its hash tag, hwotp:{<subject>}:...

  tpl   hash: model version, embedding size, sample count, the sealed templates
        and enrolment depth (which calibration scores the user); with the online
        model's version and sealed templates when the user enrolled with strokes
  fpe   the enrolment's box fingerprints (and its display templates'), kept as
        long as the enrolment
  fpa   sorted set by time: fingerprints of accepted answers, one entry per
        answer, aged out after the history's horizon (rejected answers never
        join, so an attacker cannot flush it)
  trj   the enrolment's pen trajectories, when the client sent any
  img   the enrolment images, only when asked to keep them
  dsp   one display template image per digit, when those are shown
  rep   the user's secret repositioning scheme
  sig   list: the signature verifier's version, then the enrolled signatures
        (hwotp.signature), when the user enrolled a signature
  sga   sorted set by time: the last accepted signatures, for the replay check
  ack   a marker rewritten after an enrolment, whose replication confirms
        the enrolment's (TemplateStore.replicated); it expires within a minute

Everything but the model versions, the embedding sizes and the sample count is
sealed with AES-GCM (hwotp.sealing), bound to its kind and subject.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import redis
from redis.cluster import RedisCluster

from hwotp.errors import FailedPrecondition, Unavailable
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, SealError

# An accepted answer joins the history of an enrolled user only, and the
# history forgets what is older than its horizon.
_REMEMBER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now, horizon = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - horizon)
redis.call('PEXPIRE', KEYS[2], horizon)
return 1
"""
# An accepted signature joins the history of a subject with an enrolled signature;
# the history keeps the newest ARGV[4] within the horizon.
_REMEMBER_SIGNATURE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now, horizon = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - horizon)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], horizon)
return 1
"""
SIGNATURE_HISTORY = 20

# What an enrolment writes (and a re-enrolment replaces); the secret
# repositioning scheme and the accepted answers' history outlive re-enrolment
# and go with deletion.
_ENROLMENT = ("tpl", "fpe", "img", "trj", "dsp")
SEALED_KINDS = (*_ENROLMENT, "fpa", "rep", "sig", "sga")
KINDS = (*SEALED_KINDS, "ack")  # every kind of key the verifier keeps


class AlreadyEnrolled(FailedPrecondition):
    """The subject has templates, and the change did not come with the owner's proof."""


@dataclass(frozen=True)
class Templates:
    model_version: str
    vectors: np.ndarray  # (10, D) float32 per-digit mean embeddings
    samples: int
    online: np.ndarray | None = None  # (10, D') of the pen paths, when every sample came as strokes
    online_version: str = ""
    depth: int = 1  # the fewest enrolment samples of any digit


def _key(subject: str, kind: str) -> str:
    return f"hwotp:{{{subject}}}:{kind}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class NotReplicated(Unavailable):
    """A write no replica confirmed in time: it may be lost if the primary fails now."""


class TemplateStore:
    def __init__(self, client: redis.Redis, sealer: Sealer, history_days: int = 90, clock=_now_ms,
                 replica_wait_ms: int = 1000):
        self.client, self.sealer, self.clock = client, sealer, clock
        self.replica_wait_ms = replica_wait_ms
        self.horizon_ms = history_days * 86_400_000
        self._remember = client.register_script(_REMEMBER)
        self._remember_signature = client.register_script(_REMEMBER_SIGNATURE)

    def _seal(self, data: bytes, kind: str, subject: str) -> bytes:
        return self.sealer.seal(data, f"{kind}:{subject}".encode())

    def _open(self, blob: bytes, kind: str, subject: str) -> bytes:
        try:
            return self.sealer.open(blob, f"{kind}:{subject}".encode())
        except SealError as exc:
            raise FailedPrecondition(f"stored templates cannot be opened ({exc}); check HWOTP_TEMPLATE_KEYS") from None

    def _templates(self, subject: str, stored: dict) -> Templates:
        vectors = self._vectors(subject, stored, b"vectors", b"dim")
        online = self._vectors(subject, stored, b"online", b"online_dim") if b"online" in stored else None
        # sealed: a depth written into Redis by hand could pick a laxer calibration
        depth = self._open(stored[b"depth"], "dpt", subject)[0] if b"depth" in stored else 1
        return Templates(stored[b"model_version"].decode(), vectors, int(stored[b"samples"]), online,
                         stored.get(b"online_version", b"").decode(), depth)

    def _vectors(self, subject: str, stored: dict, field: bytes, dim: bytes) -> np.ndarray:
        # the online templates are sealed as a kind of their own: one cannot pass for the other
        kind = "tpl" if field == b"vectors" else "tpo"
        return np.frombuffer(self._open(stored[field], kind, subject), dtype="<f4").reshape(10, int(stored[dim]))

    def _fingerprints(self, subject: str, kind: str, entries) -> np.ndarray:
        opened = b"".join(self._open(entry, kind, subject) for entry in entries)
        return np.frombuffer(opened, dtype=np.int8).reshape(-1, FINGERPRINT_BYTES)

    def save(self, subject: str, templates: Templates, fingerprints: np.ndarray,
             images: list[tuple[int, bytes]] = (), trajectories: list[tuple[int, bytes]] = (),
             display: dict[int, bytes] | None = None, replace: bool = False) -> None:
        """images, trajectories: (digit, data) of the enrolment; display: digit -> image; kept only if given.
        Without `replace`, an enrolled subject is refused (AlreadyEnrolled), atomically."""
        vectors = np.ascontiguousarray(templates.vectors, dtype="<f4")
        fingerprint_bytes = np.ascontiguousarray(fingerprints, dtype=np.int8).tobytes()

        def write(pipe) -> None:
            if not replace and pipe.exists(_key(subject, "tpl")):
                raise AlreadyEnrolled("user is already enrolled: re-enrolment needs an owner_token from an "
                                      "accepted login, or an administrator's override")
            pipe.multi()
            # a re-enrolment replaces the old templates whole or not at all
            pipe.delete(*(_key(subject, kind) for kind in _ENROLMENT))
            stored = {
                "model_version": templates.model_version,
                "dim": vectors.shape[1],
                "vectors": self._seal(vectors.tobytes(), "tpl", subject),
                "samples": templates.samples,
                "depth": self._seal(bytes([min(templates.depth, 255)]), "dpt", subject),
            }
            if templates.online is not None:
                online = np.ascontiguousarray(templates.online, dtype="<f4")
                stored.update(online_version=templates.online_version, online_dim=online.shape[1],
                              online=self._seal(online.tobytes(), "tpo", subject))
            pipe.hset(_key(subject, "tpl"), mapping=stored)
            if len(fingerprints):
                pipe.rpush(_key(subject, "fpe"), self._seal(fingerprint_bytes, "fpe", subject))
            for kind, entries in (("img", images), ("trj", trajectories)):
                if entries:
                    pipe.rpush(_key(subject, kind), *[self._seal(bytes([digit]) + data, kind, subject)
                                                      for digit, data in entries])
            if display:
                pipe.hset(_key(subject, "dsp"), mapping={str(digit): self._seal(image, "dsp", subject)
                                                         for digit, image in display.items()})

        self.client.transaction(write, _key(subject, "tpl"))
        self.replicated(subject, "enrolment")

    def display_templates(self, subject: str, digits) -> list[bytes] | None:
        """The display template image of each digit, None when none are kept."""
        blobs = self.client.hmget(_key(subject, "dsp"), [str(d) for d in digits])
        if any(blob is None for blob in blobs):
            return None
        return [self._open(blob, "dsp", subject) for blob in blobs]

    def kept(self, subject: str, kind: str) -> list[tuple[int, bytes]]:
        """Kept enrolment data with their digits: kind "img" (images, for re-enrolment after a
        model upgrade) or "trj" (serialized pen trajectories)."""
        opened = [self._open(blob, kind, subject) for blob in self.client.lrange(_key(subject, kind), 0, -1)]
        return [(entry[0], entry[1:]) for entry in opened]

    def load(self, subject: str) -> Templates | None:
        stored = self.client.hgetall(_key(subject, "tpl"))
        return self._templates(subject, stored) if stored else None

    def load_for_verification(self, subject: str) -> tuple[Templates, np.ndarray, str] | None:
        """Templates, the fingerprints of the enrolment and of the accepted answers within
        the horizon, and the repositioning scheme ("" for none): one round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(_key(subject, "tpl"))
            pipe.lrange(_key(subject, "fpe"), 0, -1)
            pipe.zrangebyscore(_key(subject, "fpa"), self.clock() - self.horizon_ms, "+inf")
            pipe.get(_key(subject, "rep"))
            stored, enrolment, accepted, scheme = pipe.execute()
        if not stored:
            return None
        history = np.concatenate([self._fingerprints(subject, "fpe", enrolment),
                                  self._fingerprints(subject, "fpa", accepted)])
        return self._templates(subject, stored), history, self._scheme(subject, scheme)

    def _scheme(self, subject: str, blob: bytes | None) -> str:
        return self._open(blob, "rep", subject).decode() if blob else ""

    def remember(self, subject: str, fingerprints: np.ndarray) -> bool:
        """The boxes of an accepted answer join the history (enrolled subjects only)."""
        if len(fingerprints) == 0:
            return False
        entry = self._seal(np.ascontiguousarray(fingerprints, dtype=np.int8).tobytes(), "fpa", subject)
        return bool(self._remember(keys=[_key(subject, "tpl"), _key(subject, "fpa")],
                                   args=[self.clock(), self.horizon_ms, entry]))

    def save_signatures(self, subject: str, version: str, signatures: list[bytes]) -> None:
        """An enrolled subject's signatures (serialized, hwotp.signature), replacing any
        before and their accepted history (the caller checked that the subject is enrolled)."""
        keys = (_key(subject, "sig"), _key(subject, "sga"))

        def write(pipe) -> None:
            pipe.multi()
            pipe.delete(*keys)
            pipe.rpush(keys[0], *[self._seal(data, "sig", subject) for data in (version.encode(), *signatures)])

        self.client.transaction(write, keys[0])
        self.replicated(subject, "signature enrolment")

    def load_signatures(self, subject: str) -> tuple[str, list[bytes], list[bytes]] | None:
        """(version, enrolled signatures, accepted signatures within the horizon), None without."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.lrange(_key(subject, "sig"), 0, -1)
            pipe.zrangebyscore(_key(subject, "sga"), self.clock() - self.horizon_ms, "+inf")
            enrolled, accepted = pipe.execute()
        if not enrolled:
            return None
        version, *references = [self._open(blob, "sig", subject) for blob in enrolled]
        return version.decode(), references, [self._open(blob, "sga", subject) for blob in accepted]

    def remember_signature(self, subject: str, signature: bytes) -> bool:
        entry = self._seal(signature, "sga", subject)
        return bool(self._remember_signature(keys=[_key(subject, "sig"), _key(subject, "sga")],
                                             args=[self.clock(), self.horizon_ms, entry, SIGNATURE_HISTORY]))

    def set_repositioning(self, subject: str, scheme: str) -> None:
        if scheme:
            self.client.set(_key(subject, "rep"), self._seal(scheme.encode(), "rep", subject))
        else:
            self.client.delete(_key(subject, "rep"))

    def enrolment(self, subject: str) -> tuple[str | None, str, bool]:
        """The model a subject's templates belong to (None when not enrolled), its
        repositioning scheme and whether it has a signature: one small round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(_key(subject, "tpl"), "model_version")
            pipe.get(_key(subject, "rep"))
            pipe.exists(_key(subject, "sig"))
            version, scheme, signed = pipe.execute()
        return (version.decode() if version is not None else None), self._scheme(subject, scheme), bool(signed)

    def model_version(self, subject: str) -> str | None:
        version = self.client.hget(_key(subject, "tpl"), "model_version")
        return version.decode() if version is not None else None

    def delete(self, subject: str) -> bool:
        keys = [_key(subject, kind) for kind in KINDS]
        return bool(self._written_then_confirmed(subject, "deletion", lambda pipe: pipe.delete(*keys)))

    def replicated(self, subject: str, what: str) -> None:
        """Return once a replica has what was written for the subject (NotReplicated after
        replica_wait_ms), when its primary has replicas. WAIT counts the writes of its own
        connection: a marker is written on the connection that waits, and since the
        replication stream is ordered, a replica that has it has everything written before."""
        self._written_then_confirmed(subject, what, lambda pipe: pipe.set(_key(subject, "ack"), b"1", px=60_000),
                                     only_with_replicas=True)

    def _written_then_confirmed(self, subject: str, what: str, write, only_with_replicas: bool = False):
        """write(pipe) on the primary of the subject's slot, then WAIT 1 on that connection."""
        node = self.client
        if isinstance(node, RedisCluster):
            node = node.get_redis_connection(node.get_node_from_key(_key(subject, "tpl")))
        replicas = node.info("replication").get("connected_slaves", 0)
        if only_with_replicas and not replicas:
            return None  # a single Redis: durability is its AOF's
        with node.pipeline(transaction=False) as pipe:
            write(pipe)
            if replicas:
                pipe.execute_command("WAIT", 1, self.replica_wait_ms)
            written, *confirmed = pipe.execute()
        if replicas and int(confirmed[0]) < 1:
            raise NotReplicated(f"the {what} was written but no Redis replica confirmed it within "
                                f"{self.replica_wait_ms} ms: it may be lost if the primary fails now; "
                                "check with GetEnrollment and retry")
        return written
