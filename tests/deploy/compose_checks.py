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
    "steps replayed (dry run), and the HEALTHCHECK script run against a live service. "
    "tests/deploy/test_images.py builds the images and runs the service containers."
)
IMAGES_NOT_CHECKED = (
    "Image checks: every image built and the five service containers run on the host network "
    "against this session's NATS/Redis/PostgreSQL, with compose's commands, environment and grace "
    "periods, and the file read by Compose v1 (and v2 when its plugin is installed). NOT checked: "
    "the third-party images (nats, redis, postgres, mailpit: public registries are unreachable "
    "here), compose's own networking (bridge networks are not allowed here) and `docker compose "
    "up` starting the containers itself."
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


def healthcheck_command(parser: DockerfileParser, stage: str) -> list[str]:
    """A stage's HEALTHCHECK CMD as argv, with files the Dockerfile COPYs in mapped to the repo's."""
    for item in stages(parser)[stage]:
        if item["instruction"] == "HEALTHCHECK":
            command = item["value"].split(" CMD ", 1)[1].strip()
            argv = json.loads(command) if command.startswith("[") else ["sh", "-c", command]
            copied = copied_files(parser, stage)
            return [str(ROOT / copied[arg]) if arg in copied else arg for arg in argv]
    raise AssertionError(f"stage {stage} has no HEALTHCHECK")


def copied_files(parser: DockerfileParser, stage: str) -> dict[str, str]:
    """Image path -> repository path of each single file a stage COPYs from the build context."""
    out = {}
    for item in stages(parser)[stage]:
        if item["instruction"] != "COPY" or "--from=" in item["value"]:
            continue
        args = [p for p in shlex.split(item["value"]) if not p.startswith("--")]
        if len(args) == 2 and not args[1].endswith("/"):
            out[args[1]] = args[0]
    return out


def uv_sync_commands(parser: DockerfileParser, stage: str) -> list[str]:
    """The ``uv sync`` commands a stage runs, without BuildKit's --mount flags."""
    commands = []
    for item in stages(parser)[stage]:
        if item["instruction"] == "RUN" and "uv sync" in item["value"]:
            value = re.sub(r"--mount=\S+\s*", "", item["value"]).strip()
            value = value.replace("with-build-ca ", "")  # it only adds a CA when one is given
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
