#!/bin/sh
# Start as a replica of whatever primary the Sentinels know; with no Sentinel up
# yet (first start), redis-ha-0 is the primary.
set -eu
. /scripts/find-master.sh
SELF="$(hostname).$DOMAIN"
set -- --dir /data --appendonly yes --appendfsync always \
  --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$SELF"
[ "$MASTER" = "$SELF" ] || set -- "$@" --replicaof "$MASTER" 6379
exec redis-server "$@"
