"""Service processes for integration tests: started as a user would (``python -m``), stopped by signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from tests.support.environment import PORT_VARIABLES

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", "test-artifacts"))


class ServiceProcess:
    """One service running as a subprocess in a test namespace."""

    def __init__(
        self,
        name: str,
        *,
        env: dict[str, str],
        port: int,
        tag: str,
        python: str = sys.executable,
        log_name: str | None = None,
    ) -> None:
        self.name = name
        self.env = env
        self.port = port
        #: The interpreter (a bench may run another worktree's code through its venv's python).
        self.python = python
        self.log_path = ARTIFACTS / "logs" / tag / f"{log_name or name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._terminated = False

    @property
    def url(self) -> str:
        """Base URL of its HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True, timeout_s: float = 60.0) -> ServiceProcess:
        """Start it (and by default wait until /readyz answers 200)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._terminated = False
        self.proc = subprocess.Popen(
            [self.python, "-m", f"callcenter.{self.name}"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready(timeout_s=timeout_s)
        return self

    def wait_ready(self, *, timeout_s: float = 60.0) -> None:
        """Block until /readyz is 200; raise with the log tail if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_mark(self) -> int:
        """Where its log ends now; :meth:`wait_for_log` with ``since`` looks only at what follows."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_records(self, *, since: int = 0) -> list[dict[str, object]]:
        """Its JSON log lines written after offset ``since`` (complete lines only)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                data = log.read()
        except OSError:
            return []
        records = []
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                break  # still being written
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    async def wait_for_log(
        self, *events: str, since: int = 0, timeout_s: float = 20.0, **fields: object
    ) -> dict[str, object]:
        """The first log record after ``since`` whose event is one of ``events`` with ``fields``.

        An observable point in the service's own work, to wait on instead of sleeping; raises
        TimeoutError (with the log's tail) when it does not come within ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for record in self.log_records(since=since):
                if record.get("event") in events and all(
                    record.get(key) == value for key, value in fields.items()
                ):
                    return record
            if loop.time() > deadline:
                raise TimeoutError(
                    f"{self.name} logged none of {events} with {fields} in {timeout_s}s:\n"
                    + self.log_tail()
                )
            await asyncio.sleep(0.05)

    def log_text(self) -> str:
        """Its whole log."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout_s``); return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.terminate()
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM without waiting (once: a second could mean "stop now"); :meth:`stop` waits."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class ServiceStarter:
    """Starts service processes in one namespace; :meth:`stop_all` stops them, latest first."""

    def __init__(self, *, env: dict[str, str], ports: dict[str, int], tag: str) -> None:
        self.env = env
        self.ports = ports
        self.tag = tag
        self.started: list[ServiceProcess] = []

    def start(
        self,
        name: str,
        *,
        wait: bool = True,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> ServiceProcess:
        """Start ``name``; ``port`` runs another replica on its own port."""
        env = {**self.env, **(extra_env or {})}
        if port is not None:
            env[PORT_VARIABLES[name]] = str(port)
        proc = ServiceProcess(name, env=env, port=port or self.ports[name], tag=self.tag)
        self.started.append(proc)
        return proc.start(wait=wait)

    def stop_all(self) -> None:
        """Stop every process it started: SIGTERM to all (later ones first), then wait for each.

        They drain side by side instead of one after the other.
        """
        stop_together(reversed(self.started))
        self.started.clear()


def stop_together(procs: Iterable[ServiceProcess]) -> None:
    """SIGTERM every process of ``procs`` in order, then wait for each (they drain side by side)."""
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.stop()
