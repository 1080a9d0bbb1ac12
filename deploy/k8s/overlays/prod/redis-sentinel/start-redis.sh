#!/bin/sh
# Start as a replica of whatever primary the Sentinels know; with no Sentinel up
# yet (first start), redis-ha-0 is the primary.
set -eu
. /scripts/find-master.sh
SELF="$(hostname).$DOMAIN"
# The password goes into a config file (printf is a shell builtin), never into arguments.
printf 'requirepass %s\nmasterauth %s\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /conf/auth.conf
set -- --dir /data --appendonly yes --appendfsync always --include /conf/auth.conf \
  --maxmemory 768mb --maxmemory-policy noeviction --replica-announce-ip "$SELF"
[ "$MASTER" = "$SELF" ] || set -- "$@" --replicaof "$MASTER" 6379
exec redis-server "$@"
