"""Enrolment templates in Redis (no gRPC here). Keys hold a hash of the user id, not the id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import redis


@dataclass(frozen=True)
class Templates:
    model_version: str
    vectors: np.ndarray  # (10, D) float32 per-digit mean embeddings
    samples: int


def _key(user_id: str) -> str:
    return "hwotp:tpl:" + hashlib.sha256(user_id.encode()).hexdigest()


class TemplateStore:
    def __init__(self, client: redis.Redis):
        self.client = client

    def save(self, user_id: str, templates: Templates) -> None:
        vectors = np.ascontiguousarray(templates.vectors, dtype="<f4")
        # One MULTI/EXEC: a re-enrolment replaces the old templates whole or not at all.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(_key(user_id))
            pipe.hset(_key(user_id), mapping={
                "model_version": templates.model_version,
                "dim": vectors.shape[1],
                "vectors": vectors.tobytes(),
                "samples": templates.samples,
            })
            pipe.execute()

    def load(self, user_id: str) -> Templates | None:
        stored = self.client.hgetall(_key(user_id))
        if not stored:
            return None
        dim = int(stored[b"dim"])
        vectors = np.frombuffer(stored[b"vectors"], dtype="<f4").reshape(10, dim)
        return Templates(stored[b"model_version"].decode(), vectors, int(stored[b"samples"]))

    def model_version(self, user_id: str) -> str | None:
        """The model a user's templates belong to, None when not enrolled (one small read)."""
        version = self.client.hget(_key(user_id), "model_version")
        return version.decode() if version is not None else None

    def delete(self, user_id: str) -> bool:
        return bool(self.client.delete(_key(user_id)))
