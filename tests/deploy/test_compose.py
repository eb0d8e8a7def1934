"""docker-compose.yml and the Dockerfile refer only to things that exist, and do what they say.

No Docker engine here: see ``compose_checks.NOT_CHECKED`` (printed at the end of the run).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from callcenter.common.cli import build_parser
from callcenter.common.config import CallCenterConfig
from callcenter.common.runtime import ServiceRuntime
from tests.deploy.compose_checks import (
    ROOT,
    SERVICES,
    compose,
    compose_schema,
    config_from_env,
    copy_sources,
    dockerfile,
    dockerignore_patterns,
    healthcheck_command,
    ignored,
    image_env,
    interpolate,
    stages,
    uv_sync_commands,
)
from tests.support.environment import free_port

DOCKERFILE = ROOT / "Dockerfile"


def callcenter_services() -> dict[str, dict[str, Any]]:
    """Compose services built from our Dockerfile, by name."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def test_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_compose_runs_every_service_and_the_infrastructure() -> None:
    services = compose()["services"]
    for name in (*SERVICES, "nats", "redis", "postgres", "migrate"):
        assert name in services, f"compose has no {name}"
    smtp = [n for n, s in services.items() if "mailpit" in s.get("image", "") or "smtp" in n]
    assert smtp, "compose needs a local SMTP catcher"
    nats_cmd = services["nats"]["command"]
    assert "--jetstream" in nats_cmd or "-js" in nats_cmd
    store = nats_cmd[nats_cmd.index("--store_dir") + 1]
    assert any(v.endswith(":" + store) for v in services["nats"]["volumes"]), (
        "JetStream file storage on a volume"
    )


def test_builds_refer_to_existing_dockerfiles_targets_and_args() -> None:
    for name, svc in callcenter_services().items():
        build = svc["build"]
        path = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        assert path.is_file(), f"{name}: {path} does not exist"
        parsed = dockerfile(path)
        assert build["target"] in stages(parsed), f"{name}: no stage {build['target']} in {path}"
        declared = {
            item["value"].split("=")[0] for item in parsed.structure if item["instruction"] == "ARG"
        }
        for arg in build.get("args", {}):
            assert arg in declared, f"{name}: build arg {arg} is not declared in {path}"
        service_arg = build.get("args", {}).get("SERVICE")
        if service_arg is not None:
            assert service_arg == name, f"{name} builds the image of {service_arg}"
            assert (ROOT / "services" / service_arg / "pyproject.toml").is_file()


def test_commands_run_real_modules_and_cli_commands() -> None:
    cli = build_parser()
    subcommands = set(cli._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name, svc in callcenter_services().items():
        argv = [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]
        text = " ".join(argv)
        if "-m" in argv:
            module = argv[argv.index("-m") + 1]
            assert module == f"callcenter.{name}"
            main = ROOT / "services" / name / "callcenter" / name / "__main__.py"
            assert main.is_file(), f"{name}: `python -m {module}` needs {main.relative_to(ROOT)}"
        words = shlex.split(text.replace("&&", " ; "))
        for index, word in enumerate(words):
            if word == "callcenter":
                rest = words[index + 1 :]
                assert rest and rest[0] in subcommands, (
                    f"{name}: `callcenter {rest[:1]}` is not a command"
                )


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict) and depends, f"{name}: depends_on with conditions"
        assert depends["nats"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name, svc in services.items():
        for dep, rule in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )
            if rule["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must be one-shot"


def test_service_environment_points_at_the_compose_infrastructure() -> None:
    services = compose()["services"]
    for name in (*SERVICES, "migrate"):
        env = services[name]["environment"]
        assert env["NATS_URL"] == "nats://nats:4222"
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["SMTP_HOST"] in services
    pg = services["postgres"]["environment"]
    url = services["gateway"]["environment"]["DATABASE_URL"]
    assert (
        url
        == f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_container_environment_is_a_valid_configuration(service: str) -> None:
    """Image ENV + compose environment load into CallCenterConfig (no unknown key, no typo)."""
    svc = compose()["services"][service]
    env = image_env(dockerfile(DOCKERFILE), ("base", "runtime"), svc["build"].get("args", {}))
    env["CALLCENTER_CONFIG"] = str(ROOT / "config.yaml")  # /app/config.yaml in the image
    for key, value in svc["environment"].items():
        value = interpolate(str(value))
        if value:
            env[key] = value
    config = config_from_env(env)
    section = getattr(config, service)
    host = section.host if service in ("gateway", "voice_pipeline") else section.health_host
    assert host == "0.0.0.0"
    assert config.nats.url == "nats://nats:4222"
    assert config.smtp.host == "mailpit"
    assert config.gateway.public_base_url == "http://localhost:8000"


# --- the Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_copies_only_what_exists_and_is_in_the_build_context() -> None:
    parsed = dockerfile(DOCKERFILE)
    patterns = dockerignore_patterns()
    for source in copy_sources(parsed):
        for service in SERVICES if "${SERVICE}" in source else [None]:
            path = source.replace("${SERVICE}", service) if service else source
            assert (ROOT / path).exists(), f"COPY {path}: no such file"
            assert not ignored(path, patterns), f"COPY {path}: excluded by .dockerignore"
    for secret in (".env", ".git", ".venv", "test-artifacts"):
        assert ignored(secret, patterns), f".dockerignore must exclude {secret}"


def test_dockerfile_builder_copies_every_workspace_member_manifest() -> None:
    sources = set(copy_sources(dockerfile(DOCKERFILE)))
    members = sorted(
        p.parent.relative_to(ROOT)
        for p in ROOT.glob("*/*/pyproject.toml")
        if p.parts[-3] in {"libs", "services"}
    )
    for member in members:
        assert f"{member}/pyproject.toml" in sources, (
            f"builder stage misses {member}/pyproject.toml"
        )


def test_images_run_as_non_root_with_a_healthcheck() -> None:
    by_stage = stages(dockerfile(DOCKERFILE))
    for stage in ("runtime", "ops"):
        users = [i["value"] for i in by_stage[stage] if i["instruction"] == "USER"]
        assert users and not users[-1].startswith(("0", "root")), f"{stage} runs as root"
    assert any(i["instruction"] == "HEALTHCHECK" for i in by_stage["runtime"])


def _dry_run_sync(command: str, service: str | None) -> set[str]:
    """Replay a Dockerfile `uv sync` (as a dry run) in a copy of its build context's manifests."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to replay the Dockerfile's uv sync steps"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for source in copy_sources(dockerfile(DOCKERFILE)):
            if source.endswith(("pyproject.toml", "uv.lock")):
                target = src / source
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
        env = {
            **os.environ,
            "UV_PROJECT_ENVIRONMENT": str(Path(tmp) / "venv"),
            "UV_FROZEN": "1",
            "UV_PYTHON": sys.executable,
            "SERVICE": service or "",
        }
        env.pop("VIRTUAL_ENV", None)
        proc = subprocess.run(
            ["sh", "-c", command.replace("uv sync", "uv sync --dry-run")],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        return {
            line.split()[1].split("==")[0]
            for line in (proc.stdout + proc.stderr).splitlines()
            if line.strip().startswith("+ ")
        }


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_voice_pipeline_image_carries_pipecat(service: str) -> None:
    first_sync = uv_sync_commands(dockerfile(DOCKERFILE), "build")[0]
    assert "--no-install-workspace" in first_sync, "the first layer must hold dependencies only"
    packages = _dry_run_sync(first_sync, service)
    assert "nats-py" in packages and "pydantic" in packages
    assert ("pipecat-ai" in packages) == (service == "voice_pipeline")
    assert ("litellm" in packages) == (service in {"conversation", "post_call"})


def test_ops_image_has_every_service_but_not_pipecat() -> None:
    first_sync = uv_sync_commands(dockerfile(DOCKERFILE), "build-ops")[0]
    packages = _dry_run_sync(first_sync, None)
    assert {"litellm", "fastapi", "asyncpg"} <= packages
    assert "pipecat-ai" not in packages


async def test_image_healthcheck_command_follows_readyz(config: CallCenterConfig) -> None:
    """The HEALTHCHECK command succeeds against a ready service and fails once it drains."""
    command = healthcheck_command(dockerfile(DOCKERFILE), "runtime")
    port = free_port()
    runtime = ServiceRuntime(
        name="tools", config=config, host="127.0.0.1", port=port, install_signals=False
    )
    env = {
        **os.environ,
        "CC_SERVICE": "tools",
        "CALLCENTER_CONFIG": str(ROOT / "config.yaml"),
        "CALLCENTER_TOOLS__HEALTH_PORT": str(port),
        "CALLCENTER_TOOLS__HEALTH_HOST": "0.0.0.0",
        # the image puts its virtualenv first on PATH; so does this
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    async def check() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, err.decode(errors="replace")[-800:]

    async with runtime:
        await runtime.start_http()
        code, err = await check()
        assert code == 0, err
        runtime.readiness.draining = True
        code, err = await check()
        assert code != 0 and "503" in err, err


def test_image_healthcheck_starts_no_python() -> None:
    """The check runs every 10 s in every container: a shell and a socket, not an interpreter."""
    command = healthcheck_command(dockerfile(DOCKERFILE), "runtime")
    script = Path(command[0])
    assert script.is_file(), f"HEALTHCHECK runs {command[0]}, which is not a file the image gets"
    code = [
        line for line in script.read_text().splitlines()[1:] if not line.lstrip().startswith("#")
    ]
    assert script.read_text().startswith("#!/bin/bash")
    assert not any("python" in line for line in code), "the health check starts Python"


async def test_image_healthcheck_falls_back_to_the_port_the_image_was_built_with(
    config: CallCenterConfig, tmp_path: Path
) -> None:
    """With no port variable set, the check asks the port written at build time (config.yaml's)."""
    command = healthcheck_command(dockerfile(DOCKERFILE), "runtime")
    port = free_port()
    (tmp_path / "health-port").write_text(f"{port}\n")
    runtime = ServiceRuntime(
        name="post_call", config=config, host="127.0.0.1", port=port, install_signals=False
    )
    env = {"PATH": os.environ["PATH"], "CC_SERVICE": "post_call"}
    env["CC_HEALTH_PORT_FILE"] = str(tmp_path / "health-port")

    async def check() -> int:
        proc = await asyncio.create_subprocess_exec(*command, env=env)
        return await asyncio.wait_for(proc.wait(), 30)

    assert await check() == 1, "nothing listens yet: not healthy"
    async with runtime:
        await runtime.start_http()
        assert await check() == 0
    env["CC_SERVICE"] = "nonsense"
    assert await check() == 2
