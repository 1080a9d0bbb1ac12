#!/bin/sh
# Start as a replica of whatever master the Sentinels know; with no Sentinel up
# yet (first start), redis-ha-0 is the master.
set -eu
DOMAIN=redis-ha.hwotp.svc.cluster.local
SELF="$(hostname).$DOMAIN"
MASTER=""
for i in 0 1 2; do
  MASTER=$(redis-cli -h "redis-ha-$i.$DOMAIN" -p 26379 --raw sentinel get-master-addr-by-name hwotp 2>/dev/null | head -n 1 || true)
  [ -n "$MASTER" ] && break
done
[ -n "$MASTER" ] || MASTER="redis-ha-0.$DOMAIN"
set -- --dir /data --appendonly yes --appendfsync always \
  --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$SELF"
[ "$MASTER" = "$SELF" ] || set -- "$@" --replicaof "$MASTER" 6379
exec redis-server "$@"
