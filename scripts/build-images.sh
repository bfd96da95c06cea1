#!/usr/bin/env bash
# Build the container images from Debian's packages and PyPI wheels, with no registry of
# images: the base image (Debian bookworm with Python 3.11 and redis-server) comes from
# debootstrap, the Python packages (and this project's own wheel) are built or downloaded on
# the host into build/wheels, and the Dockerfile installs them with no index. Idempotent: a built base image and wheels are kept.
#   scripts/build-images.sh            # podman (default)
#   ENGINE=docker scripts/build-images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-podman}
BASE_IMAGE=${AEGIS_BASE_IMAGE:-localhost/aegismatrix-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=${PY:-.venv/bin/python}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}

if ! $ENGINE image exists "$BASE_IMAGE" 2>/dev/null; then
  root=$(mktemp -d /tmp/aegis-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "build-images: debootstrap bookworm into $root"
  debootstrap --variant=minbase --include=python3,python3-venv,redis-server,ca-certificates \
    bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | $ENGINE import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  echo "build-images: base image $BASE_IMAGE"
fi

# Wheels for the image's Python (3.11, like the host's): built or downloaded on the host,
# because pip inside a container cannot verify this network's TLS certificates.
mkdir -p build/wheels
stamp="build/wheels/.requirements-$(cat requirements.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "build-images: wheels into build/wheels"
  # async-timeout: redis needs it on Python < 3.11.3 (bookworm's is 3.11.2), the host does not
  "$PY" -m pip wheel --quiet --wheel-dir build/wheels torch==2.13.0 async-timeout==5.0.1 \
    -r requirements.txt
  rm -f build/wheels/.requirements-*
  touch "$stamp"
fi

# The project's own wheel, every build (its code changes with every commit)
# (setuptools keeps modules deleted since in build/lib and would ship them: start clean)
rm -rf build/wheels/aegismatrix-*.whl build/lib build/bdist.*
"$PY" -m pip wheel --quiet --no-deps --wheel-dir build/wheels .

echo "build-images: aegismatrix:latest from $BASE_IMAGE"
$ENGINE build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t localhost/aegismatrix:latest . >/dev/null
echo "build-images: done"
