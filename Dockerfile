# syntax=docker/dockerfile:1.7
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
#   docker build --target runtime --build-arg SERVICE=gateway -t callcenter-gateway .
#   docker build --target runtime --build-arg SERVICE=voice_pipeline -t callcenter-voice-pipeline .
#   docker build --target ops -t callcenter-ops .      # `callcenter migrate|seed|config check|chat`
#
# SERVICE is one of: gateway, voice_pipeline, conversation, tools, post_call.
# Each image: a dependencies-only layer (rebuilt only when a pyproject.toml or uv.lock changes),
# then the code; runs as uid 10001; a HEALTHCHECK on the service's /readyz.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
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
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_FROZEN=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
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
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --no-install-workspace --package "callcenter-$(echo "$SERVICE" | tr _ -)"
COPY libs/common/ libs/common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --no-editable --package "callcenter-$(echo "$SERVICE" | tr _ -)"

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
COPY --chown=callcenter:callcenter config.yaml /app/config.yaml
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
STOPSIGNAL SIGTERM
# Ready = /readyz answers 200 on the port this service's config says (env overrides included).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request as u; from callcenter.common.cli.up import health_url; from callcenter.common.config import load_config; u.urlopen(health_url(load_config(), '$CC_SERVICE') + '/readyz', timeout=4)"
CMD ["sh", "-c", "exec python -m \"callcenter.$CC_SERVICE\""]

# ---------------------------------------------------------------------------------------------
# The operations image: every member's migrations and seed data, the `callcenter` CLI.
# It holds all services except the voice pipeline's dependencies (pipecat): the voice pipeline
# package itself is installed without them so that its migrations and seed entry points register.
FROM builder AS build-ops
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --no-install-workspace \
      --package callcenter-gateway --package callcenter-conversation \
      --package callcenter-tools --package callcenter-post-call
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --no-editable \
      --package callcenter-gateway --package callcenter-conversation \
      --package callcenter-tools --package callcenter-post-call \
 && uv pip install --no-deps ./services/voice_pipeline

FROM base AS ops
COPY --from=build-ops --chown=callcenter:callcenter /app/.venv /app/.venv
COPY --chown=callcenter:callcenter config.yaml /app/config.yaml
USER 10001:10001
HEALTHCHECK NONE
ENTRYPOINT ["callcenter"]
CMD ["--help"]
