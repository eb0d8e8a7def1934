"""Liveness, readiness and Prometheus metrics endpoints every service exposes.

``/healthz`` answers 200 while the process's event loop runs. ``/readyz`` answers 200 only while
every dependency check passes (NATS connected, Redis and PostgreSQL answering), else 503 with the
failing checks, so Kubernetes stops routing to a replica that lost a dependency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Check = Callable[[], Awaitable[bool]]


class Readiness:
    """A named set of dependency checks."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self.draining = False
        #: Check name -> what it lacks, in plain words (shown by /readyz while it fails).
        self.notes: dict[str, str] = {}

    def add(self, name: str, check: Check) -> None:
        """Register a check; it must return quickly and never raise."""
        self._checks[name] = check

    async def evaluate(self, *, timeout_s: float = 1.5) -> dict[str, bool]:
        """Run every check concurrently; a check that times out or raises counts as failed."""

        async def run(check: Check) -> bool:
            try:
                async with asyncio.timeout(timeout_s):
                    return bool(await check())
            except Exception:
                return False

        names = list(self._checks)
        results = await asyncio.gather(*(run(self._checks[name]) for name in names))
        return dict(zip(names, results, strict=True))


def health_routes(readiness: Readiness) -> list[Route]:
    """Routes for /healthz, /readyz and /metrics."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await readiness.evaluate()
        ready = all(checks.values()) and not readiness.draining
        body = {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "draining": readiness.draining,
        }
        lacks = {name: note for name, note in readiness.notes.items() if not checks.get(name)}
        if lacks:
            body["lacks"] = lacks
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
