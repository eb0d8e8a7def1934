#
# One multi-target Dockerfile for every Callcenter image, built from the repository root.
#
# Why one file and not services/<name>/Dockerfile: the services are members of one uv workspace
# with one uv.lock and a shared libs/common, so every image needs the repository root as its
# build context anyway; one file keeps the base, the non-root user, the uv settings and the
# healthcheck in one place, and each service still gets its own image holding only its own
# dependencies (`uv sync --package callcenter-<name>`), so only the voice pipeline carries pipecat
# (and the Silero VAD model that ships inside the pipecat package).
#
#   DOCKER_BUILDKIT=1 docker build --target runtime --build-arg SERVICE=gateway -t callcenter-gateway .
#   DOCKER_BUILDKIT=1 docker build --target ops -t callcenter-ops .   # migrate|seed|config|chat|tools
#
# SERVICE is one of: gateway, voice_pipeline, conversation, tools, post_call.
# Each image: a dependencies-only layer (rebuilt only when a pyproject.toml or uv.lock changes),
# then the code; runs as uid 10001; a HEALTHCHECK on the service's /readyz.
#
# Needs BuildKit (Docker >= 18.09 with DOCKER_BUILDKIT=1, or buildx) and no frontend image: there
# is deliberately no `# syntax=` line, so nothing is fetched from a registry but the two bases.
# Build arguments:
#   PYTHON_IMAGE  the base: a Debian bookworm with python3.11 (a mirror, or a locally built base:
#                 scripts/build-base-images.sh makes one from Debian packages)
#   UV_IMAGE      an image holding /uv and /uvx (the same script makes one from the host's uv)
# Behind a TLS-intercepting proxy, hand the build your CA (PEM) as a secret; it is used by the
# `uv sync` steps only and never stored in a layer:
#   docker build --secret id=ca_bundle,src=/path/to/corporate-ca.pem ...

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CALLCENTER_CONFIG=/app/config.yaml \
    CALLCENTER_GATEWAY__HOST=0.0.0.0 \
    CALLCENTER_VOICE_PIPELINE__HOST=0.0.0.0 \
    CALLCENTER_CONVERSATION__HEALTH_HOST=0.0.0.0 \
    CALLCENTER_TOOLS__HEALTH_HOST=0.0.0.0 \
    CALLCENTER_POST_CALL__HEALTH_HOST=0.0.0.0
RUN groupadd --system --gid 10001 callcenter \
 && useradd --system --uid 10001 --gid callcenter --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin callcenter \
 && mkdir -p /app \
 && chown callcenter:callcenter /app
WORKDIR /app

# ---------------------------------------------------------------------------------------------
# The workspace's manifests only: uv needs every member's pyproject.toml to read the workspace.
FROM base AS builder
COPY --from=uv /uv /uvx /usr/local/bin/
COPY scripts/with-build-ca.sh /usr/local/bin/with-build-ca
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_FROZEN=1
WORKDIR /src
COPY pyproject.toml uv.lock config.yaml ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/eval/pyproject.toml libs/eval/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/voice_pipeline/pyproject.toml services/voice_pipeline/
COPY services/conversation/pyproject.toml services/conversation/
COPY services/tools/pyproject.toml services/tools/
COPY services/post_call/pyproject.toml services/post_call/

# ---------------------------------------------------------------------------------------------
# One service: its third-party dependencies (a layer of their own), then libs/common and its code.
FROM builder AS build
ARG SERVICE
RUN test -n "$SERVICE" && test -f "services/$SERVICE/pyproject.toml" \
    || { echo "build with --build-arg SERVICE=<gateway|voice_pipeline|conversation|tools|post_call>"; exit 1; }
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    with-build-ca uv sync --no-dev --no-install-workspace --package "callcenter-$(echo "$SERVICE" | tr _ -)"
COPY libs/common/ libs/common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    with-build-ca uv sync --no-dev --no-editable --package "callcenter-$(echo "$SERVICE" | tr _ -)"
# The port /readyz answers on with config.yaml as built; the health check reads it when the
# service's port variable is not set. Python and the config load once here, not every 10 s.
RUN CALLCENTER_CONFIG=/src/config.yaml /app/.venv/bin/python -c \
    "from callcenter.common.cli.up import health_url; from callcenter.common.config import load_config; print(health_url(load_config(), '$SERVICE').rsplit(':', 1)[1])" \
    > /app/health-port

# ---------------------------------------------------------------------------------------------
# A service image: only the virtualenv (with libs/common and the service installed) and config.yaml.
FROM base AS runtime
ARG SERVICE
ENV CC_SERVICE=${SERVICE}
# The voice pipeline's embedded TTS is the espeak-ng program; local model weights (whisper,
# piper) live in a volume mounted at the speech cache (compose / chart mount it).
ENV CALLCENTER_VOICE_PIPELINE__SPEECH_CACHE_DIR=/app/speech-cache
RUN if [ "$SERVICE" = "voice_pipeline" ]; then \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends espeak-ng \
      && rm -rf /var/lib/apt/lists/* \
      && mkdir -p /app/speech-cache && chown callcenter:callcenter /app/speech-cache; \
    fi
COPY --from=build --chown=callcenter:callcenter /app/.venv /app/.venv
COPY --from=build /app/health-port /app/health-port
COPY scripts/healthcheck.sh /usr/local/bin/callcenter-healthcheck
COPY --chown=callcenter:callcenter config.yaml /app/config.yaml
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
STOPSIGNAL SIGTERM
# Ready = /readyz answers 200 on this service's port (its port variable, else config.yaml's).
# bash alone (~2 ms of CPU): no Python start, no config import every 10 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/callcenter-healthcheck"]
CMD ["sh", "-c", "exec python -m \"callcenter.$CC_SERVICE\""]

# ---------------------------------------------------------------------------------------------
# The operations image: every member's migrations and seed data and the `callcenter` commands for
# operators (scripts/ops-entrypoint.sh lists them; each one runs in this image). It holds every
# service but the voice pipeline (pipecat and its audio stack are not needed to operate the system;
# `callcenter simulate-call` runs from a source checkout, see README).
FROM builder AS build-ops
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    with-build-ca uv sync --no-dev --no-install-workspace \
      --package callcenter-gateway --package callcenter-conversation \
      --package callcenter-tools --package callcenter-post-call
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    with-build-ca uv sync --no-dev --no-editable \
      --package callcenter-gateway --package callcenter-conversation \
      --package callcenter-tools --package callcenter-post-call

FROM base AS ops
COPY --from=build-ops --chown=callcenter:callcenter /app/.venv /app/.venv
COPY --chown=callcenter:callcenter config.yaml /app/config.yaml
COPY scripts/ops-entrypoint.sh /usr/local/bin/callcenter-ops
USER 10001:10001
HEALTHCHECK NONE
ENTRYPOINT ["callcenter-ops"]
CMD ["--help"]
