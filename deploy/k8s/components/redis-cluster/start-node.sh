#!/bin/sh
# One Redis Cluster node. Its node id and the cluster's shape live in
# /data/nodes.conf on its volume; the pod announces its stable DNS name, so a
# rescheduled pod with a new IP rejoins as itself.
set -eu
SELF="$(hostname).$DOMAIN"
# The password goes into a config file (printf is a shell builtin), never into arguments.
printf 'requirepass %s\nmasterauth %s\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /conf/auth.conf
exec redis-server --dir /data --appendonly yes --appendfsync always --include /conf/auth.conf \
  --maxmemory 768mb --maxmemory-policy noeviction \
  --cluster-enabled yes --cluster-config-file /data/nodes.conf --cluster-node-timeout 5000 \
  --cluster-announce-hostname "$SELF" --cluster-preferred-endpoint-type hostname
