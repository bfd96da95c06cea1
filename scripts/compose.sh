#!/usr/bin/env bash
# Run docker-compose.yml on this machine with podman (no Docker engine here):
#   scripts/compose.sh up -d            scripts/compose.sh up -d --scale direction=3
#   scripts/compose.sh down -v
# podman-compose (requirements-dev.txt) reads the same compose file; podman's settings for
# this host kind come from scripts/podman/containers.conf. `down` here first stops every
# service but Redis (SIGTERM, SIGKILL after down's -t), replicas added by --scale included, so
# none is left reconnecting to a Redis that is gone; then podman-compose's down, which leaves
# those replicas (and so the network, and the volumes they hold); then it removes whatever
# still carries the project's label, volumes too with -v: `down -v` leaves nothing of `up`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}
compose=("${PODMAN_COMPOSE:-.venv/bin/podman-compose}" -f docker-compose.yml)
if [ "${1:-}" != down ]; then
  exec "${compose[@]}" "$@"
fi

timeout=10 volumes=false
args=("$@")
for ((i = 1; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    -v | --volumes) volumes=true ;;
    -t | --timeout) timeout=${args[i + 1]} ;;
    --timeout=*) timeout=${args[i]#--timeout=} ;;
  esac
done
project=${COMPOSE_PROJECT_NAME:-$(sed -n 's/^name: *\([A-Za-z0-9_.-]*\).*/\1/p' docker-compose.yml)}
label=label=io.podman.compose.project=$project
service='{{.ID}} {{index .Labels "com.docker.compose.service"}}'
mapfile -t left < <(podman ps --filter "$label" --format "$service" | awk '$2 != "redis" {print $1}')
[ ${#left[@]} -eq 0 ] || podman stop -t "$timeout" "${left[@]}" >/dev/null

"${compose[@]}" "$@"

mapfile -t left < <(podman ps -aq --filter "$label")
[ ${#left[@]} -eq 0 ] || podman rm -f --depend "${left[@]}" >/dev/null
mapfile -t left < <(podman network ls -q --filter "$label")
[ ${#left[@]} -eq 0 ] || podman network rm -f "${left[@]}" >/dev/null
if $volumes; then
  mapfile -t left < <(podman volume ls -q --filter "$label")
  [ ${#left[@]} -eq 0 ] || podman volume rm -f "${left[@]}" >/dev/null
fi
