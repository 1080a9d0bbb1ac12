#!/bin/sh
# Sentinel needs a writable config file: it lives on an emptyDir. Sentinels ask
# clients and each other for the Redis password.
set -eu
. /scripts/find-master.sh
cat > /sentinel/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname).$DOMAIN
sentinel monitor hwotp $MASTER 6379 2
sentinel auth-pass hwotp $REDIS_PASSWORD
requirepass $REDIS_PASSWORD
sentinel sentinel-pass $REDIS_PASSWORD
sentinel down-after-milliseconds hwotp 5000
sentinel failover-timeout hwotp 30000
sentinel parallel-syncs hwotp 1
CONF
exec redis-server /sentinel/sentinel.conf --sentinel
