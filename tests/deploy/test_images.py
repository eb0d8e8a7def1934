"""Every image builds, and the five service containers run the system (README's compose path).

What docker-compose.yml describes, minus the third-party images: the images are built from the
Dockerfile with compose's targets, args and tags, the ops image migrates and seeds, and the five
service containers run with compose's commands, environment and stop grace periods, on the host
network against this session's NATS/Redis/PostgreSQL namespace (no bridge network: containers may
not reach private address ranges here). A chat then goes through the containerized gateway.

Measured on the 2-core CI machine shared by eight test runs (load average ~25): fully cold (no
engine running, no base, empty BuildKit cache) 12.5 min, of which ~6 min bootstrap the base and
~5 min build the six images; warm (base tarball and layers cached) about 2 min. The base is kept
as a tarball outside the checkout (scripts/build-base-images.sh) and the layers in the engine's
data root, so a fresh clone on the same machine starts warm.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from packaging.markers import Marker

from bench._namespace import remove_namespace
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool
from tests.deploy.compose_checks import ROOT, SERVICES, compose, interpolate
from tests.deploy.docker_engine import Engine, docker_cli, install_docker, run
from tests.support.environment import TestEnvironment

# a cold build (base bootstrapped, every wheel downloaded) is part of the first test's set-up
pytestmark = pytest.mark.timeout(1200)

OPS = "migrate"  # the compose service that runs the ops image
#: Startup order of compose's depends_on (each waits for the ones before it to be healthy).
ORDER = ("tools", "conversation", "post_call", "voice_pipeline", "gateway")
#: An idle service drains in well under this; `docker stop` waits this long before SIGKILL here
#: (compose's grace periods go up to 600 s for live calls: a hung stop must not cost that much).
DRAIN_S = 30
STOP_WAIT_S = 40


@dataclass(frozen=True)
class Image:
    """One image compose builds: its compose service, tag, target and build args."""

    service: str
    tag: str
    target: str
    args: dict[str, str]


def compose_images() -> list[Image]:
    """The images docker-compose.yml builds, as it would build them."""
    images = []
    for name, svc in compose()["services"].items():
        if "build" in svc:
            build = svc["build"]
            images.append(Image(name, svc["image"], build["target"], dict(build.get("args", {}))))
    return images


def grace_seconds(value: str) -> int:
    """Compose's ``stop_grace_period`` (``30s``, ``2m``) in seconds."""
    match = re.fullmatch(r"(\d+)(s|m)", value)
    assert match, f"unsupported stop_grace_period {value!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


@dataclass
class System:
    """The built images and the running service containers of one test module."""

    engine: Engine
    tag: str
    images: dict[str, Image]
    env: dict[str, str]
    containers: dict[str, str]
    build_seconds: float

    @property
    def docker(self) -> str:
        return self.engine.docker

    def inspect(self, ref: str, kind: str = "container") -> dict[str, Any]:
        return json.loads(run(self.docker, kind, "inspect", ref).stdout)[0]

    def ops(self, *argv: str, timeout: float = 120, check: bool = True) -> Any:
        """Run the ops image with this namespace's environment."""
        return run(
            self.docker,
            "run",
            "--rm",
            "--network",
            "host",
            *self.env_flags(),
            self.images[OPS].tag,
            *argv,
            timeout=timeout,
            check=check,
        )

    def env_flags(self) -> list[str]:
        return [flag for key, value in self.env.items() for flag in ("-e", f"{key}={value}")]


def container_env(test_env: TestEnvironment) -> dict[str, str]:
    """Compose's environment for the services, pointed at this session's namespace."""
    env = {
        key: interpolate(str(value))
        for key, value in compose()["services"]["gateway"]["environment"].items()
    }
    env = {key: value for key, value in env.items() if value}
    namespace = dict(test_env.env)
    namespace.pop("CALLCENTER_CONFIG")  # the image's own /app/config.yaml
    env.update(namespace)
    # the compose file's SMTP catcher is a third-party image; nothing listens: e-mail retries
    env.pop("SMTP_HOST", None)
    env.pop("SMTP_PORT", None)
    return env


def host_ca_bundle() -> str | None:
    """The CAs this machine trusts, handed to the build (a TLS-intercepting proxy's CA included)."""
    for path in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if path and os.path.isfile(path):
            return path
    return None


def build(engine: Engine, image: Image, bases: dict[str, str]) -> None:
    argv = [engine.docker, "build", "--network", "host", "--target", image.target, "-t", image.tag]
    for key, value in {**bases, **image.args}.items():
        argv += ["--build-arg", f"{key}={value}"]
    bundle = host_ca_bundle()
    if bundle:
        argv += ["--secret", f"id=ca_bundle,src={bundle}"]
    replaced = engine.image_id(image.tag)
    run(*argv, str(ROOT), timeout=1500, env={"DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"})
    if replaced and replaced != engine.image_id(image.tag):
        run(engine.docker, "rmi", replaced, check=False)  # the build's previous image, now untagged


def wait_healthy(system: System, names: list[str], timeout: float = 180) -> None:
    """Until every container's HEALTHCHECK says healthy; fail with the logs of one that is not."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        for name in list(pending):
            state = system.inspect(system.containers[name])["State"]
            if state["Status"] != "running":
                logs = run(system.docker, "logs", "--tail", "60", system.containers[name])
                raise AssertionError(f"{name} is {state['Status']}:\n{logs.stdout}{logs.stderr}")
            if state.get("Health", {}).get("Status") == "healthy":
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            details = {
                n: system.inspect(system.containers[n])["State"].get("Health") for n in pending
            }
            raise AssertionError(f"not healthy after {timeout:.0f} s: {details}")
        time.sleep(1)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    install_docker()
    started = Engine(docker=docker_cli()).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def image_env(test_env: TestEnvironment) -> TestEnvironment:
    """This module's own namespace (schema, streams, Redis prefix, ports): the containers migrate
    and seed it, and it is removed afterwards without touching the session's."""
    return TestEnvironment(tag=f"{test_env.tag}img")


@pytest.fixture(scope="module")
def image_config(image_env: TestEnvironment) -> CallCenterConfig:
    """The configuration of this module's namespace."""
    return image_env.config()


@pytest.fixture(scope="module")
def system(
    engine: Engine, image_env: TestEnvironment, image_config: CallCenterConfig
) -> Iterator[System]:
    began = time.monotonic()
    lines = run(
        "bash",
        str(ROOT / "scripts/build-base-images.sh"),
        timeout=900,
        env={"DOCKER": engine.docker},
    ).stdout
    bases = dict(line.split("=", 1) for line in lines.split())
    engine.check_containers_run(bases["PYTHON_IMAGE"])
    images = {image.service: image for image in compose_images()}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(images)) as pool:
        for future in [pool.submit(build, engine, image, bases) for image in images.values()]:
            future.result()
    built = time.monotonic() - began

    services = compose()["services"]
    system = System(engine, image_env.tag, images, container_env(image_env), {}, built)
    try:
        system.ops("migrate")
        system.ops("seed")
        for name in ORDER:
            svc = services[name]
            grace = grace_seconds(svc["stop_grace_period"])
            container = f"cc-{image_env.tag}-{name}"
            run(
                engine.docker,
                "run",
                "-d",
                "--name",
                container,
                "--network",
                "host",
                "--stop-timeout",
                str(grace),
                *system.env_flags(),
                images[name].tag,
                *svc["command"],
            )
            system.containers[name] = container
        wait_healthy(system, list(ORDER))
        yield system
    finally:
        for container in system.containers.values():
            run(engine.docker, "rm", "-f", "-v", container, check=False)


@pytest.fixture(scope="module", autouse=True)
async def _namespace_cleanup(image_config: CallCenterConfig) -> AsyncIterator[None]:
    """The schema the ops image migrated, the services' streams and Redis keys go afterwards."""
    yield
    await remove_namespace(image_config)


# --- the tests ------------------------------------------------------------------------------


async def test_a_chat_through_the_containerized_gateway_gets_the_real_order_status(
    system: System, image_config: CallCenterConfig
) -> None:
    """The ops image's `callcenter chat` talks to the gateway container; tools answers from PG."""
    pool = await create_pool(image_config.database, attempts=3)
    try:
        order = await pool.fetchrow(
            "SELECT o.status, s.tracking_number FROM orders o "
            "LEFT JOIN shipments s USING (order_id) WHERE o.order_id = 'ORD-1001'"
        )
    finally:
        await pool.close()
    assert order is not None, "the ops image's `seed` must load ORD-1001"
    port = system.env["CALLCENTER_GATEWAY__PORT"]
    proc = system.ops(
        "chat", "--url", f"ws://127.0.0.1:{port}/chat/ws", "-m", "Where is my order ORD-1001?"
    )
    answers = [line for line in proc.stdout.splitlines() if line.startswith("assistant> ")]
    assert len(answers) == 2, proc.stdout  # the greeting, then the answer
    answer = answers[-1].lower()
    assert str(order["status"]).replace("_", " ").lower() in answer, answer
    assert order["tracking_number"].lower() in answer, answer


def test_service_containers_are_healthy_by_a_check_that_starts_no_python(system: System) -> None:
    for name, container in system.containers.items():
        details = system.inspect(container)
        assert details["Config"]["Healthcheck"]["Test"] == [
            "CMD",
            "/usr/local/bin/callcenter-healthcheck",
        ], name
        health = details["State"]["Health"]
        assert health["Status"] == "healthy", (name, health)
        assert health["Log"] and health["Log"][-1]["ExitCode"] == 0, (name, health["Log"])


def test_service_containers_run_as_the_unprivileged_user(system: System) -> None:
    for image in system.images.values():
        assert system.inspect(image.tag, "image")["Config"]["User"] == "10001:10001", image.tag
    for name, container in system.containers.items():
        assert system.inspect(container)["Config"]["User"] == "10001:10001", name
        ids = run(system.docker, "exec", container, "id", "-u").stdout.strip()
        assert ids == "10001", f"{name} runs as uid {ids}"
        # the service process itself (PID 1: `sh -c exec python` leaves only python)
        status = run(system.docker, "exec", container, "cat", "/proc/1/status").stdout
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4, (name, uid_line)
        assert "python" in run(system.docker, "exec", container, "cat", "/proc/1/comm").stdout


def _expected_packages(packages: list[str], environment: dict[str, str]) -> set[str]:
    """What `uv sync --no-dev --package P` installs by uv.lock, on the image's Python."""
    names: set[str] = set()
    for package in packages:
        argv = ("uv", "export", "--frozen", "--no-dev", "--no-hashes", "--package", package)
        for line in run(*argv, cwd=ROOT).stdout.splitlines():
            requirement, _, marker = line.strip().partition(" ; ")
            if not requirement or requirement.startswith("#"):
                continue
            if marker and not Marker(marker).evaluate(environment):
                continue
            if requirement.startswith("-e "):
                pyproject = ROOT / requirement.removeprefix("-e ").strip() / "pyproject.toml"
                names.add(_normalize(tomllib.loads(pyproject.read_text())["project"]["name"]))
            else:
                names.add(_normalize(re.split(r"[=<>\[ ]", requirement, maxsplit=1)[0]))
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


INSTALLED = """
import importlib.metadata as m, json, os, platform, sys
print(json.dumps({
    "names": sorted({d.metadata["Name"] for d in m.distributions()}),
    "environment": {
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
        "platform_machine": platform.machine(),
        "platform_system": platform.system(),
        "platform_python_implementation": platform.python_implementation(),
        "implementation_name": sys.implementation.name,
        "os_name": os.name,
    },
}))
"""


def _installed(system: System, image: str) -> tuple[set[str], dict[str, str]]:
    """The distributions in an image's virtualenv, and its Python's marker environment."""
    argv = (system.docker, "run", "--rm", "--entrypoint", "python", image, "-c", INSTALLED)
    found = json.loads(run(*argv).stdout)
    return {_normalize(name) for name in found["names"]}, found["environment"]


@pytest.mark.parametrize("service", [*SERVICES, OPS])
def test_each_image_holds_exactly_its_own_dependencies(system: System, service: str) -> None:
    image = system.images[service]
    members = (
        [f"callcenter-{image.args['SERVICE'].replace('_', '-')}"]
        if image.target == "runtime"
        else [f"callcenter-{s.replace('_', '-')}" for s in SERVICES if s != "voice_pipeline"]
    )
    installed, environment = _installed(system, image.tag)
    expected = _expected_packages(members, environment)
    assert installed == expected, (
        f"{image.tag}: extra {sorted(installed - expected)}, missing {sorted(expected - installed)}"
    )
    assert ("pipecat-ai" in installed) == (service == "voice_pipeline")
    assert ("litellm" in installed) == (service in {"conversation", "post_call", OPS})


def test_ops_image_runs_every_command_it_lists(system: System) -> None:
    """Each command of the ops image's --help runs for real here; others are refused clearly."""
    listed = run(system.docker, "run", "--rm", system.images[OPS].tag).stdout
    commands = set(re.findall(r"^  (\S+)\s{2,}", listed, re.MULTILINE))
    port = system.env["CALLCENTER_GATEWAY__PORT"]
    invocations = {
        "migrate": ["migrate"],
        "seed": ["seed"],
        "config": ["config", "check"],
        "chat": ["chat", "--url", f"ws://127.0.0.1:{port}/chat/ws", "-m", "hello"],
        "tools": ["tools", "issue-code", "CUS-0001"],
    }
    assert commands == set(invocations), f"the ops image lists {sorted(commands)}"
    for command, argv in invocations.items():
        proc = system.ops(*argv, check=False)
        assert proc.returncode == 0, (command, proc.stdout[-1500:], proc.stderr[-1500:])
    assert re.search(r"\b\d{6}\b", system.ops("tools", "issue-code", "CUS-0001").stdout)
    refused = system.ops("simulate-call", "--say", "hi", check=False)
    assert refused.returncode == 2 and "not a command of the ops image" in refused.stderr


def test_compose_file_is_accepted_by_the_installed_compose_versions(engine: Engine) -> None:
    """Debian's docker-compose v1 (installed when missing) and the v2 plugin, when present."""
    if not shutil.which("docker-compose") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-compose", env=env)
    checked = []
    for argv in (["docker-compose"], [engine.docker, "compose"]):
        if run(*argv, "version", check=False).returncode != 0:
            continue
        config = run(*argv, "-f", str(ROOT / "docker-compose.yml"), "config", cwd=ROOT).stdout
        resolved = yaml.safe_load(config)["services"]
        for image in compose_images():
            assert resolved[image.service]["image"] == image.tag
            assert resolved[image.service]["build"]["target"] == image.target
        checked.append(" ".join(argv))
    assert "docker-compose" in checked, "Compose v1 must read docker-compose.yml"


def test_sigterm_stops_every_service_cleanly_within_its_grace_period(system: System) -> None:
    """`docker stop` (SIGTERM): each service drains and exits 0 well before compose's grace."""
    services = compose()["services"]

    def stop(name: str) -> tuple[str, float]:
        began = time.monotonic()
        wait = min(grace_seconds(services[name]["stop_grace_period"]), STOP_WAIT_S)
        run(system.docker, "stop", "-t", str(wait), system.containers[name], timeout=wait + 60)
        return name, time.monotonic() - began

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(ORDER)) as pool:
        stopped = dict(pool.map(stop, ORDER))
    for name, seconds in stopped.items():
        state = system.inspect(system.containers[name])["State"]
        grace = grace_seconds(services[name]["stop_grace_period"])
        assert state["ExitCode"] == 0, f"{name} exited {state['ExitCode']} on SIGTERM"
        assert not state["OOMKilled"]
        assert seconds < min(grace, DRAIN_S), (
            f"{name} took {seconds:.1f} s to stop (grace {grace} s)"
        )
