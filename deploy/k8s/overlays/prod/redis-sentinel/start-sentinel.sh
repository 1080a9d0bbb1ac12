#!/bin/sh
# Sentinel needs a writable config file: it lives on an emptyDir.
set -eu
DOMAIN=redis-ha.hwotp.svc.cluster.local
MASTER=""
for i in 0 1 2; do
  MASTER=$(redis-cli -h "redis-ha-$i.$DOMAIN" -p 26379 --raw sentinel get-master-addr-by-name hwotp 2>/dev/null | head -n 1 || true)
  [ -n "$MASTER" ] && break
done
[ -n "$MASTER" ] || MASTER="redis-ha-0.$DOMAIN"
cat > /sentinel/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname).$DOMAIN
sentinel monitor hwotp $MASTER 6379 2
sentinel auth-pass hwotp $REDIS_PASSWORD
sentinel down-after-milliseconds hwotp 5000
sentinel failover-timeout hwotp 30000
sentinel parallel-syncs hwotp 1
CONF
exec redis-server /sentinel/sentinel.conf --sentinel
