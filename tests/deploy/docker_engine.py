"""A Docker engine for the image tests: the running one, or one started (and stopped) here.

On a machine of the CI kind (Debian, root, no bridge network allowed) nothing may be missing for
the image tests to run: Debian's docker.io is installed when there is no engine, and ``dockerd``
is started without a bridge or iptables (containers use the host network only). The tests skip
only when the kernel refuses to run containers, and say why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Where the engine started here keeps its log and pid (the data root is Docker's default, so the
#: images built here stay cached for the next run).
RUN_DIR = Path(os.environ.get("CALLCENTER_DOCKERD_DIR", "/tmp/callcenter-dockerd"))

# What a kernel that refuses containers says (namespaces, cgroups, overlay, seccomp).
KERNEL_REFUSALS = (
    "operation not permitted",
    "permission denied",
    "no such file or directory: unknown",
    "cgroup",
    "unshare",
    "not supported",
)


def docker_cli() -> str:
    """A docker command whose ``build`` is BuildKit (Debian's CLI with DOCKER_BUILDKIT=1, or buildx).

    A newer static CLI without the buildx plugin would build with the legacy builder, which
    cannot read the Dockerfile's ``RUN --mount``; Debian's own /usr/bin/docker builds with the
    engine's built-in BuildKit.
    """
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).is_file():
            return candidate
    return ""


def run(
    *argv: str,
    timeout: float = 120,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, text in and out; raise with its output when it fails and ``check``."""
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def install_docker() -> None:
    """Install Debian's docker.io (engine and a BuildKit-capable CLI) when there is no dockerd."""
    if shutil.which("dockerd") and Path("/usr/bin/docker").is_file():
        return
    if os.geteuid() != 0:
        pytest.fail("no Docker engine: run `sudo apt-get install docker.io` (Debian/Ubuntu)")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    argv = ("apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io")
    if run(*argv, timeout=600, check=False, env=env).returncode != 0:
        run("apt-get", "update", "-qq", timeout=600, env=env)
        run(*argv, timeout=600, env=env)


@dataclass
class Engine:
    """A reachable Docker engine; ``started`` when this process started it (and must stop it)."""

    docker: str
    started: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: RUN_DIR / "dockerd.log")

    def reachable(self) -> bool:
        """Whether ``docker info`` answers."""
        return run(self.docker, "info", timeout=30, check=False).returncode == 0

    def start(self) -> Engine:
        """Use the running engine, else start dockerd on the host network only."""
        if self.reachable():
            return self
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.started = subprocess.Popen(
                [
                    shutil.which("dockerd") or "dockerd",
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    f"--pidfile={RUN_DIR / 'dockerd.pid'}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not self.reachable():
            if self.started.poll() is not None:
                self.skip_if_kernel_refuses(self.log.read_text(errors="replace")[-2000:])
                pytest.fail(f"dockerd exited {self.started.returncode}: see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"dockerd did not answer within 60 s: see {self.log}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        """Stop the dockerd started here (SIGTERM, then SIGKILL); leave any other one alone."""
        if self.started is None or self.started.poll() is not None:
            return
        self.started.send_signal(signal.SIGTERM)
        try:
            self.started.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.started.kill()
            self.started.wait(timeout=10)

    def image_id(self, ref: str) -> str:
        """The ID of an image the engine has, or "" when it has none by that name."""
        proc = run(self.docker, "image", "inspect", "-f", "{{.Id}}", ref, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def check_containers_run(self, image: str) -> None:
        """Run one throw-away container on the host network; skip if the kernel refuses it."""
        proc = run(
            self.docker, "run", "--rm", "--network", "host", image, "true", check=False, timeout=120
        )
        if proc.returncode != 0:
            self.skip_if_kernel_refuses(proc.stderr)
            raise AssertionError(f"a container does not run: {proc.stderr[-2000:]}")

    @staticmethod
    def skip_if_kernel_refuses(output: str) -> None:
        """Skip with the engine's own words when the kernel will not run containers."""
        lowered = output.lower()
        if any(sign in lowered for sign in KERNEL_REFUSALS):
            pytest.skip(f"the kernel refuses containers here: {output.strip()[-500:]}")
