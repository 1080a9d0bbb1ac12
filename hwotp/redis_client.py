"""One way to reach Redis: short timeouts so that a dead Redis fails a call fast; through
Sentinel when configured, so that a failover to a replica is followed without a restart; or
a Redis Cluster, whose client follows slots to their primaries (every key of one user shares
one hash tag, so each of a user's scripts and transactions runs on one node)."""

from __future__ import annotations

from urllib.parse import urlparse

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from hwotp.config import RedisSettings
from hwotp.metrics import Metrics

_TIMEOUTS = dict(socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 1))


def _addresses(listed: str) -> list[tuple[str, int]]:
    out = []
    for item in listed.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host, int(port)))
    return out


def connect(settings: RedisSettings) -> redis.Redis:
    url = urlparse(settings.redis_url)
    if settings.redis_cluster_nodes:
        nodes = [ClusterNode(host, port) for host, port in _addresses(settings.redis_cluster_nodes)]
        # a failover takes the cluster a few seconds: retries with backoff ride it out
        return RedisCluster(startup_nodes=nodes, password=url.password, socket_connect_timeout=0.5,
                            socket_timeout=1.0, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 6))
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, health_check_interval=10, **_TIMEOUTS)
    sentinels = _addresses(settings.redis_sentinels)
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
        if isinstance(client, RedisCluster):  # the fullest primary is the one that refuses first
            by_node = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
            memory = max(by_node.values(), key=lambda m: m["used_memory"] / max(m["maxmemory"], 1))
        else:
            memory = client.info("memory")
        metrics.redis_memory_used.set(memory["used_memory"])
        metrics.redis_memory_max.set(memory["maxmemory"])
        return True
    except redis.exceptions.RedisError:
        return False
