#!/usr/bin/env bash
# System tools the test suite uses, installed only when missing:
#   espeak-ng  makes the simulated caller's speech for the voice tests (Debian package)
#   chromium   drives the widget and dashboard browser tests (Debian package; no browser download),
#              with fonts-liberation so its screenshots show text
#   helm       renders and lints the chart (tests/deploy/install_helm.sh: from an npm package)
set -euo pipefail
cd "$(dirname "$0")/.."

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
