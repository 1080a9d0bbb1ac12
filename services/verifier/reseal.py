"""python -m services.verifier.reseal: re-seal every template, fingerprint, image, trajectory,
display template and scheme under the current key (HWOTP_TEMPLATE_KEY_ID).

The last step of a template-key rotation: afterwards no blob needs the old key,
which can then leave HWOTP_TEMPLATE_KEYS. Runs with the verifier's settings,
while the verifiers serve (each key is rewritten in one MULTI/EXEC, retried if a
verifier changed it meanwhile); run it again to check: it then re-seals nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import redis

from hwotp import config, redis_client
from hwotp.sealing import Sealer, SealError
from services.verifier.templates import SEALED_KINDS


@dataclass
class Resealed:
    keys: int = 0
    blobs: int = 0


def _parts(key: bytes) -> tuple[str, str] | None:
    """hwotp:{subject}:kind -> (subject, kind), None for keys of other shapes."""
    text = key.decode()
    if not text.startswith("hwotp:{") or "}:" not in text:
        return None
    subject, _, kind = text[len("hwotp:{"):].partition("}:")
    return (subject, kind) if kind in SEALED_KINDS else None


def _reseal_key(client: redis.Redis, sealer: Sealer, key: bytes, subject: str, kind: str) -> int:
    context = f"{kind}:{subject}".encode()

    def fresh(blob: bytes, context: bytes = context) -> bytes | None:
        return None if sealer.key_id_of(blob) == sealer.current else sealer.seal(sealer.open(blob, context), context)

    changed = 0

    def rewrite(pipe) -> None:
        nonlocal changed
        kind_of = pipe.type(key)
        if kind_of == b"hash":
            stored = pipe.hgetall(key)
            # the rest of tpl is in clear; its online templates and depth are sealed as kinds of their own
            sealed = {b"vectors": context, b"online": f"tpo:{subject}".encode(),
                      b"depth": f"dpt:{subject}".encode()} if kind == "tpl" else {field: context for field in stored}
            updates = {f: v for f, c in sealed.items() if f in stored and (v := fresh(stored[f], c)) is not None}
            pipe.multi()
            if updates:
                pipe.hset(key, mapping=updates)
        elif kind_of == b"list":
            entries = pipe.lrange(key, 0, -1)
            updates = {i: v for i, v in enumerate(map(fresh, entries)) if v is not None}
            pipe.multi()
            for index, value in updates.items():
                pipe.lset(key, index, value)
        elif kind_of == b"zset":
            entries = pipe.zrange(key, 0, -1, withscores=True)
            updates = {old: (fresh(old), score) for old, score in entries}
            updates = {old: new for old, new in updates.items() if new[0] is not None}
            pipe.multi()
            for old, (new, score) in updates.items():
                pipe.zrem(key, old)
                pipe.zadd(key, {new: score})
        elif kind_of == b"string":
            value = fresh(pipe.get(key))
            updates = {0: value} if value is not None else {}
            pipe.multi()
            if updates:
                pipe.set(key, value, keepttl=True)
        else:
            updates = {}
            pipe.multi()
        changed = len(updates)

    client.transaction(rewrite, key)
    return changed


def reseal_all(client: redis.Redis, sealer: Sealer, report=print) -> Resealed:
    done = Resealed()
    for key in client.scan_iter(match="hwotp:{*", count=1000):
        parts = _parts(key)
        if parts is None:
            continue
        done.keys += 1
        done.blobs += _reseal_key(client, sealer, key, *parts)
        if done.keys % 1000 == 0:
            report(f"{done.keys} keys read, {done.blobs} blobs re-sealed")
    return done


def main() -> None:
    settings = config.load(config.VerifierSettings)
    sealer = Sealer.from_settings(settings.template_keys, settings.template_key_id)
    try:
        done = reseal_all(redis_client.connect(settings), sealer)
    except SealError as exc:
        sys.exit(f"stopped: a blob does not open ({exc}); is every key it may be sealed with in HWOTP_TEMPLATE_KEYS?")
    print(f"done: {done.keys} keys read, {done.blobs} blobs re-sealed under {sealer.current!r}")


if __name__ == "__main__":
    main()
