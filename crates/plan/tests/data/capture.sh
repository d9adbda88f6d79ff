#!/bin/sh
# Re-capture the inspect fixtures in this directory from a live dockerd in swarm mode.
# 1. cargo test -p berth-plan --test plan -- --ignored dump_desired_for_capture  (writes /tmp/plantest/desired)
# 2. sh crates/plan/tests/data/capture.sh [create|capture|clean]
# Only objects named plantest-* are created, inspected and removed. `capture` also expects the
# stack plantest-demo deployed with `docker stack deploy --resolve-image never` (see README.md).
set -eu
S=/var/run/docker.sock
D=/tmp/plantest/desired
OUT=$(dirname "$0")
api() { curl -sf --unix-socket $S -H 'Content-Type: application/json' "$@"; }
case "${1:-capture}" in
create)
  for f in $D/network-*.json; do api -X POST http://localhost/v1.41/networks/create -d @"$f"; echo; done
  for f in $D/volume-*.json; do api -X POST http://localhost/v1.41/volumes/create -d @"$f" >/dev/null; done
  for f in $D/secret-*.json; do api -X POST http://localhost/v1.41/secrets/create -d @"$f"; echo; done
  for f in $D/config-*.json; do api -X POST http://localhost/v1.41/configs/create -d @"$f"; echo; done
  for f in $D/service-*.json; do
    # Fill in SecretID/ConfigID by name, as the engine does.
    spec=$(cat "$f")
    for n in $(echo "$spec" | jq -r '.TaskTemplate.ContainerSpec.Secrets[]?.SecretName'); do
      id=$(docker secret inspect -f '{{.ID}}' "$n")
      spec=$(echo "$spec" | jq --arg n "$n" --arg id "$id" '(.TaskTemplate.ContainerSpec.Secrets[] | select(.SecretName==$n) | .SecretID) = $id')
    done
    for n in $(echo "$spec" | jq -r '.TaskTemplate.ContainerSpec.Configs[]?.ConfigName'); do
      id=$(docker config inspect -f '{{.ID}}' "$n")
      spec=$(echo "$spec" | jq --arg n "$n" --arg id "$id" '(.TaskTemplate.ContainerSpec.Configs[] | select(.ConfigName==$n) | .ConfigID) = $id')
    done
    echo "$spec" | api -X POST http://localhost/v1.41/services/create -d @-; echo
  done
  # Foreign objects (no stack labels) and a stack made by docker stack deploy.
  docker service create -q --detach --name plantest-foreign busybox:1.36 sleep 3600 >/dev/null
  printf 'foreign' | docker secret create plantest-foreign-secret - >/dev/null
  ;;
capture)
  svc() { docker service inspect $(docker service ls -q --filter "$1") ; }
  svc label=io.berth.stack=plantest-b > "$OUT/berth_services.json"
  docker network inspect $(docker network ls -q --filter label=io.berth.stack=plantest-b) > "$OUT/berth_networks.json"
  docker secret inspect $(docker secret ls -q --filter label=io.berth.stack=plantest-b) > "$OUT/berth_secrets.json"
  docker config inspect $(docker config ls -q --filter label=io.berth.stack=plantest-b) > "$OUT/berth_configs.json"
  docker volume inspect $(docker volume ls -q --filter label=io.berth.stack=plantest-b) > "$OUT/berth_volumes.json"
  docker service inspect plantest-foreign > "$OUT/foreign_services.json"
  docker secret inspect plantest-foreign-secret > "$OUT/foreign_secrets.json"
  svc label=com.docker.stack.namespace=plantest-demo > "$OUT/stackdeploy_services.json"
  docker network inspect $(docker network ls -q --filter label=com.docker.stack.namespace=plantest-demo) > "$OUT/stackdeploy_networks.json"
  docker secret inspect $(docker secret ls -q --filter label=com.docker.stack.namespace=plantest-demo) > "$OUT/stackdeploy_secrets.json"
  docker config inspect $(docker config ls -q --filter label=com.docker.stack.namespace=plantest-demo) > "$OUT/stackdeploy_configs.json"
  ;;
clean)
  # Explicit names only: never touch anything else on the engine.
  docker service rm plantest-b_web plantest-b_worker plantest-foreign || true
  docker stack rm plantest-demo || true
  sleep 8
  docker secret rm plantest-b_db_pass_8c91b009 plantest-b_worker_token_38b530c1 plantest-foreign-secret || true
  docker config rm plantest-b_app_conf_0083dacc || true
  docker network rm plantest-b_default || true
  sleep 5
  docker volume rm plantest-b_data || true
  ;;
esac
