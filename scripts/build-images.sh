#!/usr/bin/env bash
# Build every Callcenter image under the names docker-compose.yml gives them (callcenter-*:local),
# also on a machine that cannot reach the public image registries.
#
#   scripts/build-images.sh                     # then: docker compose up --no-build
#   CA_BUNDLE=/path/to/ca.pem scripts/build-images.sh   # behind a TLS-intercepting proxy
#
# The bases come from scripts/build-base-images.sh (public when pullable, else built locally);
# the six builds run in parallel and share BuildKit's cache (the builder stage, uv's downloads).
# Environment: DOCKER (default: docker), CA_BUNDLE (a PEM file handed to the build as a secret).
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
export DOCKER_BUILDKIT=1
# PYTHON_IMAGE=... and UV_IMAGE=...
bases=$(DOCKER=$DOCKER bash scripts/build-base-images.sh)
args=()
for line in $bases; do args+=(--build-arg "$line"); done
if [ -n "${CA_BUNDLE:-}" ]; then args+=(--secret "id=ca_bundle,src=$CA_BUNDLE"); fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
names=()
build() { # tag, then docker build arguments
  local tag=$1
  shift
  "$DOCKER" build --network host "${args[@]}" -t "$tag" "$@" . >"$logs/$tag.log" 2>&1 &
  pids+=($!)
  names+=("$tag")
}
build callcenter-ops:local --target ops
for service in gateway voice_pipeline conversation tools post_call; do
  build "callcenter-${service//_/-}:local" --target runtime --build-arg "SERVICE=$service"
done
failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    echo "built ${names[$i]}"
  else
    echo "FAILED ${names[$i]}:" >&2
    tail -40 "$logs/${names[$i]}.log" >&2
    failed=1
  fi
done
exit $failed
