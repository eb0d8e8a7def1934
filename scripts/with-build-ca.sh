#!/bin/sh
# Run a command (a `uv sync` inside `docker build`) trusting an extra CA when one is given.
#
# Behind a TLS-intercepting proxy, PyPI's certificate is signed by the company's CA. Pass it as a
# BuildKit secret (`docker build --secret id=ca_bundle,src=corporate-ca.pem`): BuildKit mounts it
# at /run/secrets/ca_bundle for this RUN step only. The system's bundle plus that CA go into a
# temporary file for the command and are deleted before the step ends, so no layer keeps them.
set -eu
secret=/run/secrets/ca_bundle
if [ -s "$secret" ]; then
  bundle=$(mktemp)
  trap 'rm -f "$bundle"' EXIT
  for system in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -s "$system" ]; then cat "$system" >>"$bundle"; break; fi
  done
  cat "$secret" >>"$bundle"
  # uv, pip, requests and OpenSSL read these; uv also trusts the system store with native TLS.
  export SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle" PIP_CERT="$bundle"
  "$@"
  exit $?
fi
exec "$@"
