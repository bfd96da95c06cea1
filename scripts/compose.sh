#!/usr/bin/env bash
# Run docker-compose.yml on this machine with podman (no Docker engine here):
#   scripts/compose.sh up -d            scripts/compose.sh up -d --scale direction=3
#   scripts/compose.sh down -v
# podman-compose (requirements-dev.txt) reads the same compose file; podman's settings for
# this host kind come from scripts/podman/containers.conf.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}
exec "${PODMAN_COMPOSE:-.venv/bin/podman-compose}" -f docker-compose.yml "$@"
