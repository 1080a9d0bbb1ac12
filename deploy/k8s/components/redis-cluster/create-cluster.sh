#!/bin/sh
# Once, after the six nodes first start: three primaries with a replica each.
# A cluster that already exists is left as it is (the Job may run again).
set -eu
NODES=""
for i in 0 1 2 3 4 5; do
  HOST="redis-cluster-$i.$DOMAIN"
  until redis-cli -h "$HOST" ping | grep -q PONG; do sleep 2; done
  NODES="$NODES $HOST:6379"
done
if redis-cli -h "redis-cluster-0.$DOMAIN" cluster info | grep -q 'cluster_state:ok'; then
  echo "the cluster exists"; exit 0
fi
# shellcheck disable=SC2086
redis-cli --cluster create $NODES --cluster-replicas 1 --cluster-yes
