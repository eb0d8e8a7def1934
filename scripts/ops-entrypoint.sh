#!/bin/sh
# The ops image's entry point: the `callcenter` commands this image can run, and only those.
#
# The image holds every service but the voice pipeline, so commands that start services
# (`run`, `up`) or place calls (`simulate-call`) belong to the service images or a source
# checkout; asking for one here says so instead of failing half-way.
set -eu
usage() {
  cat <<'TEXT'
usage: docker run callcenter-ops COMMAND [ARGS]

commands (each is `callcenter COMMAND`; `COMMAND --help` for its options):
  migrate        apply the database migrations (idempotent)
  seed           load the demo data (idempotent)
  config         check the configuration (`config check`)
  chat           chat with a running system over the gateway's web-chat WebSocket
  tools          tools service commands (`tools issue-code CUS-0001`)
TEXT
}
case "${1:-}" in
  migrate | seed | config | chat | tools) exec callcenter "$@" ;;
  "" | -h | --help | help) usage ;;
  *)
    echo "callcenter-ops: '$1' is not a command of the ops image" >&2
    usage >&2
    exit 2
    ;;
esac
