"""One way to reach Redis: short timeouts, so that a dead Redis fails a call fast."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hwotp.config import Settings


def connect(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=0.5,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=10,
    )


def is_up(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
