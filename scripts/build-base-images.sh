#!/usr/bin/env bash
# Make the two base images the Dockerfile needs available to the local Docker engine.
#
#   scripts/build-base-images.sh            # prints PYTHON_IMAGE=... and UV_IMAGE=... to use
#
# For each base: use it if the engine has it, else pull the public one, else build it locally:
#   python  a Debian bookworm minbase with Debian's python3 (3.11) and ca-certificates, made with
#           debootstrap from Debian packages (installed with apt when missing; needs root), kept
#           as a tarball under $CALLCENTER_IMAGE_CACHE (default ~/.cache/callcenter/images) so a
#           fresh checkout or a fresh engine loads it in seconds instead of bootstrapping again.
#   uv      an image holding only /uv and /uvx, copied from the uv on this machine.
# Then build with:  docker build --build-arg PYTHON_IMAGE=... --build-arg UV_IMAGE=... .
# Environment: DOCKER (the docker command), PYTHON_IMAGE / UV_IMAGE (the public names to try),
# DEBIAN_MIRROR, PULL_TIMEOUT (seconds to wait for a pull, default 30).
set -euo pipefail

DOCKER=${DOCKER:-docker}
PUBLIC_PYTHON=${PYTHON_IMAGE:-python:3.11-slim-bookworm}
PUBLIC_UV=${UV_IMAGE:-ghcr.io/astral-sh/uv:0.13.9}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${CALLCENTER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callcenter/images}
PULL_TIMEOUT=${PULL_TIMEOUT:-30}
SUITE=bookworm
PACKAGES=python3,ca-certificates
# The local base's name says what is in it; a change to the recipe is a new name (and tarball).
RECIPE_VERSION=1
LOCAL_PYTHON=callcenter-base/python:3.11-$SUITE-r$RECIPE_VERSION

log() { echo "build-base-images: $*" >&2; }
have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
pull() { timeout "$PULL_TIMEOUT" "$DOCKER" pull -q "$1" >/dev/null 2>&1; }

python_image() {
  if have "$PUBLIC_PYTHON" || pull "$PUBLIC_PYTHON"; then
    echo "$PUBLIC_PYTHON"
    return
  fi
  if have "$LOCAL_PYTHON"; then
    echo "$LOCAL_PYTHON"
    return
  fi
  local tarball="$CACHE/python-3.11-$SUITE-r$RECIPE_VERSION.tar.gz"
  if [ -s "$tarball" ]; then
    log "loading $LOCAL_PYTHON from $tarball"
    gunzip -c "$tarball" | "$DOCKER" load -q >&2
    echo "$LOCAL_PYTHON"
    return
  fi
  log "$PUBLIC_PYTHON cannot be pulled; building $LOCAL_PYTHON with debootstrap ($MIRROR)"
  if ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { log "debootstrap is missing: sudo apt-get install debootstrap"; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 \
      || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends debootstrap >&2; }
  fi
  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root/rootfs" "$MIRROR" >&2
  # what the official python image offers that the Dockerfile and the images rely on
  ln -sf /usr/bin/python3 "$root/rootfs/usr/local/bin/python"
  # a smaller image: no package lists, caches, docs or man pages
  rm -rf "$root"/rootfs/var/lib/apt/lists/* "$root"/rootfs/var/cache/apt/*.bin \
    "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/usr/share/doc/* \
    "$root"/rootfs/usr/share/man/* "$root"/rootfs/usr/share/locale/*
  tar -C "$root/rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$LOCAL_PYTHON" >/dev/null
  mkdir -p "$CACHE"
  "$DOCKER" save "$LOCAL_PYTHON" | gzip -1 >"$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
  log "built $LOCAL_PYTHON (cached in $tarball)"
  echo "$LOCAL_PYTHON"
}

uv_image() {
  if have "$PUBLIC_UV" || pull "$PUBLIC_UV"; then
    echo "$PUBLIC_UV"
    return
  fi
  local uv version context
  uv=$(command -v uv || echo "$HOME/.local/bin/uv")
  if [ -x "$uv" ] && [ "$(head -c 4 "$uv" | tail -c 3)" != "ELF" ]; then
    uv=$(pyenv which uv 2>/dev/null || true) # a pyenv shim is a script: copy the real binary
  fi
  [ -x "$uv" ] || { log "$PUBLIC_UV cannot be pulled and there is no uv here to copy"; exit 1; }
  version=$("$uv" --version | awk '{print $2}')
  local name="callcenter-base/uv:$version"
  if ! have "$name"; then
    context=$(mktemp -d)
    trap 'rm -rf "$context"' RETURN
    cp "$uv" "$context/uv"
    cp "$(dirname "$uv")/uvx" "$context/uvx"
    printf 'FROM scratch\nCOPY uv uvx /\n' >"$context/Dockerfile"
    DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$name" "$context" >/dev/null
    log "built $name from $uv"
  fi
  echo "$name"
}

echo "PYTHON_IMAGE=$(python_image)"
echo "UV_IMAGE=$(uv_image)"
