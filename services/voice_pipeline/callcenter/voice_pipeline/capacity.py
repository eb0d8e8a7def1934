"""How many calls this replica can carry in real time, and whether it takes another.

A call costs ``cpu_ms_per_call_second`` of CPU per second (measured with bench/voice_calls.py);
the replica may use ``cpu_limit_cores`` (else its container's CPU limit read from its cgroup,
else the cores the OS gives the process) times ``cpu_headroom``. Beyond ``capacity`` calls every
call would start to stutter (audio underruns), so the replica refuses new media streams, reports itself not ready (the load
balancer and Twilio's retry go elsewhere), exposes its load for the HPA on /metrics, and tells
the gateway through Redis (:mod:`callcenter.common.voice_load`), whose webhook then plays an
overflow message when every replica is full.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.voice_pipeline import metrics


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The container's CPU limit in cores (cgroup v2 ``cpu.max``, else v1 CFS quota); None: none.

    This is what Kubernetes writes for ``resources.limits.cpu``, so a replica sizes itself to its
    pod without being told.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cores() -> float:
    """The cores this process may use: its container's CPU limit, else its CPU affinity."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def call_capacity(settings: VoicePipelineSettings, *, cores: float | None = None) -> int:
    """Concurrent calls this replica can carry without underruns (at least 1)."""
    if settings.max_calls is not None:
        return settings.max_calls
    limit = settings.cpu_limit_cores or cores or available_cores()
    budget_ms = limit * 1000.0 * settings.cpu_headroom
    return max(1, math.floor(budget_ms / settings.cpu_ms_per_call_second))


class CallAdmission:
    """Counts this replica's calls against its capacity; keeps the load gauges current.

    ``changed`` is set on every admission and release (the service's load reporter waits on it).
    """

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self.changed = asyncio.Event()
        metrics.CALL_CAPACITY.set(capacity)
        self._publish()

    @property
    def full(self) -> bool:
        """Whether a new call would exceed the capacity."""
        return self.active >= self.capacity

    def try_admit(self) -> bool:
        """Take one more call if there is room; False (and counted as refused) if full."""
        if self.full:
            metrics.REFUSED_CALLS.inc()
            return False
        self.active += 1
        self._publish()
        return True

    def release(self) -> None:
        """A call admitted earlier ended."""
        self.active = max(0, self.active - 1)
        self._publish()

    def _publish(self) -> None:
        metrics.LOAD.set(self.active / self.capacity)
        self.changed.set()
