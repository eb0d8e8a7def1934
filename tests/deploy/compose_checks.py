"""Reading docker-compose.yml and the Dockerfile the way Docker would, without a Docker engine."""

from __future__ import annotations

import fnmatch
import importlib.resources
import json
import os
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("gateway", "voice_pipeline", "conversation", "tools", "post_call")

NOT_CHECKED = (
    "Compose/Dockerfile checks: docker-compose.yml validated against the Compose Specification "
    "JSON schema (vendored by check-jsonschema), every build/target/arg/command/module it names "
    "checked against the repository, the Dockerfile parsed (dockerfile-parse) and its uv sync "
    "steps replayed (dry run) to prove which packages each image gets, and the image "
    "HEALTHCHECK command run against a live service. NOT checked: no image is built and no "
    "container runs (no Docker engine here), so base-image tags, apt/uv steps inside Docker, "
    "the third-party images (nats, redis, postgres, mailpit) and `docker compose up` itself "
    "are untested."
)


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE.read_text())


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema, as check-jsonschema vendors it."""
    files = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(files.joinpath("compose-spec.json").read_text())


def dockerfile(path: Path) -> DockerfileParser:
    """A parsed Dockerfile."""
    return DockerfileParser(path=str(path))


def stages(parser: DockerfileParser) -> dict[str, list[dict[str, Any]]]:
    """Stage name -> its instructions (comments left out)."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for item in parser.structure:
        if item["instruction"] == "FROM":
            match = re.search(r"\s+AS\s+(\S+)\s*$", item["value"], re.IGNORECASE)
            name = match.group(1) if match else f"stage{len(out)}"
            current = out.setdefault(name, [])
        elif current is not None and item["instruction"] != "COMMENT":
            current.append(item)
    return out


def copy_sources(parser: DockerfileParser) -> list[str]:
    """Every source path of a COPY/ADD from the build context (not --from another stage)."""
    sources = []
    for item in parser.structure:
        if item["instruction"] not in {"COPY", "ADD"}:
            continue
        parts = shlex.split(item["value"])
        if any(p.startswith("--from=") for p in parts):
            continue
        args = [p for p in parts if not p.startswith("--")]
        sources.extend(args[:-1])
    return sources


def dockerignore_patterns() -> list[str]:
    """The .dockerignore patterns (comments and blanks dropped)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker would leave ``path`` out of the build context (no '!' patterns used)."""
    path = path.strip("/")
    parts = path.split("/")
    for pattern in patterns:
        pattern = pattern.strip("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], pattern[3:]):
                return True
    return False


def healthcheck_command(parser: DockerfileParser, stage: str) -> str:
    """The shell command of a stage's HEALTHCHECK CMD."""
    for item in stages(parser)[stage]:
        if item["instruction"] == "HEALTHCHECK":
            return item["value"].split(" CMD ", 1)[1].strip()
    raise AssertionError(f"stage {stage} has no HEALTHCHECK")


def uv_sync_commands(parser: DockerfileParser, stage: str) -> list[str]:
    """The ``uv sync`` commands a stage runs, without BuildKit's --mount flags."""
    commands = []
    for item in stages(parser)[stage]:
        if item["instruction"] == "RUN" and "uv sync" in item["value"]:
            value = re.sub(r"--mount=\S+\s*", "", item["value"]).strip()
            commands.append(value)
    return commands


def image_env(
    parser: DockerfileParser, stage_chain: tuple[str, ...], args: dict[str, str]
) -> dict[str, str]:
    """The ENV a container of the last stage in ``stage_chain`` starts with (ARGs substituted)."""
    env: dict[str, str] = {}
    by_stage = stages(parser)
    for stage in stage_chain:
        for item in by_stage[stage]:
            if item["instruction"] != "ENV":
                continue
            for pair in shlex.split(item["value"]):
                key, _, value = pair.partition("=")
                env[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
    return env


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with VAR unset: the default."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def config_from_env(env: dict[str, str]) -> Any:
    """CallCenterConfig as a process with exactly this environment would load it."""
    from callcenter.common.config import CallCenterConfig

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({"PATH": saved.get("PATH", ""), **env})
        return CallCenterConfig()
    finally:
        os.environ.clear()
        os.environ.update(saved)
