#!/bin/bash
# The service images' HEALTHCHECK: GET /readyz on this service's port, with bash alone.
#
# It costs a few milliseconds of CPU; the former check started Python and imported the config
# (0.4-1.3 s of CPU every 10 s per container). The port is the service's port variable when set
# (compose, the Helm chart and the tests set them), else the port config.yaml gave it when the
# image was built (/app/health-port). Exit 0 = ready (200), 1 = not ready, 2 = misconfigured.
case "${CC_SERVICE:-}" in
  gateway) port=${CALLCENTER_GATEWAY__PORT:-} ;;
  voice_pipeline) port=${CALLCENTER_VOICE_PIPELINE__PORT:-} ;;
  conversation) port=${CALLCENTER_CONVERSATION__HEALTH_PORT:-} ;;
  tools) port=${CALLCENTER_TOOLS__HEALTH_PORT:-} ;;
  post_call) port=${CALLCENTER_POST_CALL__HEALTH_PORT:-} ;;
  *) echo "CC_SERVICE is not a Callcenter service: '${CC_SERVICE:-}'" >&2; exit 2 ;;
esac
if [ -z "$port" ]; then
  port=$(cat "${CC_HEALTH_PORT_FILE:-/app/health-port}" 2>/dev/null)
fi
if ! [[ $port =~ ^[0-9]+$ ]]; then
  echo "no health port for $CC_SERVICE" >&2
  exit 2
fi
if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
  echo "nothing listens on :$port" >&2
  exit 1
fi
printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
if ! IFS= read -r -t 4 status <&3; then
  echo "no answer from :$port/readyz" >&2
  exit 1
fi
status=${status%$'\r'}
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) echo ":$port/readyz answered: $status" >&2; exit 1 ;;
esac
