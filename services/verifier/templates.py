"""Enrolment templates and replay fingerprints in Redis (no gRPC here).

Keys hold a hash of the user id, not the id: hwotp:tpl:<h> (templates) and
hwotp:fp:<h> (fingerprints of the user's enrolled and submitted boxes, one
entry per submission, the newest holding at most `history` boxes kept),
hwotp:trj:<h> (the enrolment's pen trajectories, when the client sent any, for
an online verifier) and, only when asked to keep them,
hwotp:img:<h> (the enrolment images), hwotp:dsp:<h> (one display template
image per digit, when those are shown) and hwotp:rep:<h> (the user's secret
repositioning scheme). Everything but the model version, the
embedding size and the sample count is sealed with AES-GCM (hwotp.sealing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import redis

from hwotp.errors import FailedPrecondition
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, SealError

# One round trip, atomic: templates and earlier fingerprints are read, then
# the new fingerprints appended (for enrolled users only). A history entry is
# one submission's (or the enrolment's) fingerprints sealed together, so its
# box count is its length in whole fingerprints (a seal adds well under one);
# the newest entries holding at most ARGV[1] boxes are kept, and always the newest.
_READ_AND_REMEMBER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local templates = redis.call('HGETALL', KEYS[1])
local history = redis.call('LRANGE', KEYS[2], 0, -1)
local scheme = redis.call('GET', KEYS[3]) or ''
local limit, size = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
local boxes, keep = 0, 0
for i = #history + #ARGV - 2, 1, -1 do
  local entry = history[i] or ARGV[i - #history + 2]
  boxes = boxes + math.floor(#entry / size)
  if boxes > limit and keep > 0 then break end
  keep = keep + 1
end
if keep > 0 then redis.call('LTRIM', KEYS[2], -keep, -1) end
return {templates, history, scheme}
"""
# What an enrolment writes (and a re-enrolment replaces); the secret
# repositioning scheme (rep) outlives re-enrolment and goes with deletion.
_ENROLMENT = ("tpl", "fp", "img", "trj", "dsp")


@dataclass(frozen=True)
class Templates:
    model_version: str
    vectors: np.ndarray  # (10, D) float32 per-digit mean embeddings
    samples: int


def _hashed(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


class TemplateStore:
    def __init__(self, client: redis.Redis, sealer: Sealer, history: int = 200):
        self.client, self.sealer, self.history = client, sealer, history
        self._read_and_remember = client.register_script(_READ_AND_REMEMBER)

    def _open(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self.sealer.open(blob, context)
        except SealError as exc:
            raise FailedPrecondition(f"stored templates cannot be opened ({exc}); check HWOTP_TEMPLATE_KEYS") from None

    def _templates(self, user: str, stored: dict) -> Templates:
        dim = int(stored[b"dim"])
        vectors = np.frombuffer(self._open(stored[b"vectors"], f"tpl:{user}".encode()), dtype="<f4").reshape(10, dim)
        return Templates(stored[b"model_version"].decode(), vectors, int(stored[b"samples"]))

    def _seal_fingerprints(self, user: str, fingerprints: np.ndarray) -> list[bytes]:
        """One history entry for the boxes of one submission (none for none): one seal to
        open per earlier submission, not per box, on every verification."""
        if len(fingerprints) == 0:
            return []
        return [self.sealer.seal(np.ascontiguousarray(fingerprints, dtype=np.int8).tobytes(), f"fp:{user}".encode())]

    def _fingerprints(self, user: str, entries) -> np.ndarray:
        opened = b"".join(self._open(entry, f"fp:{user}".encode()) for entry in entries)
        return np.frombuffer(opened, dtype=np.int8).reshape(-1, FINGERPRINT_BYTES)

    def save(self, user_id: str, templates: Templates, fingerprints: np.ndarray,
             images: list[tuple[int, bytes]] = (), trajectories: list[tuple[int, bytes]] = (),
             display: dict[int, bytes] | None = None) -> None:
        """images, trajectories: (digit, data) of the enrolment; display: digit -> image; kept only if given."""
        user = _hashed(user_id)
        vectors = np.ascontiguousarray(templates.vectors, dtype="<f4")
        # One MULTI/EXEC: a re-enrolment replaces the old templates whole or not at all.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*self._keys(user, _ENROLMENT))
            pipe.hset(f"hwotp:tpl:{user}", mapping={
                "model_version": templates.model_version,
                "dim": vectors.shape[1],
                "vectors": self.sealer.seal(vectors.tobytes(), f"tpl:{user}".encode()),
                "samples": templates.samples,
            })
            if len(fingerprints):
                pipe.rpush(f"hwotp:fp:{user}", *self._seal_fingerprints(user, fingerprints))
            for kind, entries in (("img", images), ("trj", trajectories)):
                if entries:
                    pipe.rpush(f"hwotp:{kind}:{user}", *[self.sealer.seal(bytes([digit]) + data, f"{kind}:{user}".encode())
                                                         for digit, data in entries])
            if display:
                pipe.hset(f"hwotp:dsp:{user}", mapping={str(digit): self.sealer.seal(image, f"dsp:{user}".encode())
                                                        for digit, image in display.items()})
            pipe.execute()

    def display_templates(self, user_id: str, digits) -> list[bytes] | None:
        """The display template image of each digit, None when none are kept."""
        user = _hashed(user_id)
        blobs = self.client.hmget(f"hwotp:dsp:{user}", [str(d) for d in digits])
        if any(blob is None for blob in blobs):
            return None
        return [self._open(blob, f"dsp:{user}".encode()) for blob in blobs]

    def kept(self, user_id: str, kind: str) -> list[tuple[int, bytes]]:
        """Kept enrolment data with their digits: kind "img" (images, for re-enrolment after a
        model upgrade) or "trj" (serialized pen trajectories)."""
        user = _hashed(user_id)
        opened = [self._open(blob, f"{kind}:{user}".encode()) for blob in self.client.lrange(f"hwotp:{kind}:{user}", 0, -1)]
        return [(entry[0], entry[1:]) for entry in opened]

    @staticmethod
    def _keys(user: str, kinds=(*_ENROLMENT, "rep")) -> list[str]:
        return [f"hwotp:{kind}:{user}" for kind in kinds]

    def load(self, user_id: str) -> Templates | None:
        user = _hashed(user_id)
        stored = self.client.hgetall(f"hwotp:tpl:{user}")
        return self._templates(user, stored) if stored else None

    def load_and_remember(self, user_id: str, fingerprints: np.ndarray) -> tuple[Templates, np.ndarray, str] | None:
        """Templates, the earlier fingerprints and the repositioning scheme ("" for none);
        the new fingerprints join the history."""
        user = _hashed(user_id)
        found = self._read_and_remember(keys=[f"hwotp:tpl:{user}", f"hwotp:fp:{user}", f"hwotp:rep:{user}"],
                                        args=[self.history, FINGERPRINT_BYTES, *self._seal_fingerprints(user, fingerprints)])
        if not found:
            return None
        flat, history, scheme = found
        scheme = self._open(scheme, f"rep:{user}".encode()).decode() if scheme else ""
        return self._templates(user, dict(zip(flat[::2], flat[1::2]))), self._fingerprints(user, history), scheme

    def set_repositioning(self, user_id: str, scheme: str) -> None:
        user = _hashed(user_id)
        if scheme:
            self.client.set(f"hwotp:rep:{user}", self.sealer.seal(scheme.encode(), f"rep:{user}".encode()))
        else:
            self.client.delete(f"hwotp:rep:{user}")

    def model_version(self, user_id: str) -> str | None:
        """The model a user's templates belong to, None when not enrolled (one small read)."""
        version = self.client.hget(f"hwotp:tpl:{_hashed(user_id)}", "model_version")
        return version.decode() if version is not None else None

    def delete(self, user_id: str) -> bool:
        return bool(self.client.delete(*self._keys(_hashed(user_id))))
