#!/bin/sh
# Sourced by start-redis.sh and start-sentinel.sh: sets DOMAIN and MASTER, the
# primary the Sentinels know, or redis-ha-0 when none answers (first start).
# redis-cli authenticates with $REDISCLI_AUTH.
DOMAIN=redis-ha.hwotp.svc.cluster.local
MASTER=""
for i in 0 1 2; do
  MASTER=$(redis-cli -h "redis-ha-$i.$DOMAIN" -p 26379 --raw sentinel get-master-addr-by-name hwotp 2>/dev/null | head -n 1 || true)
  [ -n "$MASTER" ] && break
done
[ -n "$MASTER" ] || MASTER="redis-ha-0.$DOMAIN"
