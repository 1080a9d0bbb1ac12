"""One way to reach Redis: short timeouts so that a dead Redis fails a call fast, and through
Sentinel when configured, so that a failover to a replica is followed without a restart."""

from __future__ import annotations

from urllib.parse import urlparse

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from hwotp.config import RedisSettings
from hwotp.metrics import Metrics

_TIMEOUTS = dict(socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 1))


def connect(settings: RedisSettings) -> redis.Redis:
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, health_check_interval=10, **_TIMEOUTS)
    url = urlparse(settings.redis_url)
    sentinels = []
    for item in settings.redis_sentinels.split(","):
        host, _, port = item.strip().rpartition(":")
        sentinels.append((host, int(port)))
    db = int(url.path.lstrip("/") or 0)
    # Sentinels ask for the same password as Redis itself.
    sentinel = Sentinel(sentinels, sentinel_kwargs={"socket_timeout": 0.5, "password": url.password}, **_TIMEOUTS)
    return sentinel.master_for(settings.redis_master_name, password=url.password, db=db)


def is_up(client: redis.Redis, metrics: Metrics | None = None) -> bool:
    """Readiness; with metrics, also how full Redis is (it runs with maxmemory and
    noeviction: full, it refuses writes rather than drop enrolments)."""
    try:
        if metrics is None:
            return bool(client.ping())
        memory = client.info("memory")
        metrics.redis_memory_used.set(memory["used_memory"])
        metrics.redis_memory_max.set(memory["maxmemory"])
        return True
    except redis.exceptions.RedisError:
        return False
