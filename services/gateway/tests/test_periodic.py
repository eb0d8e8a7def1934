"""The gateway's background loops stop between passes, not half-way through one."""

from __future__ import annotations

import asyncio

from callcenter.gateway.periodic import Periodic


async def test_stop_lets_the_pass_under_way_finish() -> None:
    started = asyncio.Event()
    finished: list[int] = []

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.3)  # a pass in the middle of its database calls
        finished.append(1)

    loop = Periodic(name="test", work=work, interval_s=lambda: 60.0)
    loop.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await loop.stop()

    assert finished == [1]


async def test_a_pass_that_overruns_the_grace_is_cancelled() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = Periodic(name="test", work=work, interval_s=lambda: 60.0, stop_grace_s=0.2)
    loop.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await asyncio.wait_for(loop.stop(), timeout=5)

    assert cancelled.is_set()


async def test_stop_does_not_wait_for_the_interval() -> None:
    passes: list[int] = []
    passed = asyncio.Event()

    async def work() -> None:
        passes.append(1)
        passed.set()

    loop = Periodic(name="test", work=work, interval_s=lambda: 60.0)
    loop.start()
    await asyncio.wait_for(passed.wait(), timeout=5)
    await asyncio.wait_for(loop.stop(), timeout=2)  # sleeping between passes: stops at once

    assert passes == [1]
