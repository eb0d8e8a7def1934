"""Shutdown of a service process: every step bounded, so SIGTERM always ends in a clean exit."""

from __future__ import annotations

import asyncio

import asyncpg

from callcenter.common.config import CallCenterConfig
from callcenter.common.runtime import ServiceRuntime


async def test_a_hung_step_and_an_unreleased_connection_do_not_stop_the_shutdown(
    config: CallCenterConfig,
) -> None:
    runtime = ServiceRuntime(
        name="shutdown-test",
        config=config,
        host="127.0.0.1",
        port=0,
        needs_db=True,
        install_signals=False,
        stop_step_timeout_s=0.5,
    )
    later_steps: list[str] = []
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    async def runs() -> None:
        later_steps.append("ran")

    await runtime.__aenter__()
    pool = runtime.db
    assert pool is not None
    leaked = await pool.acquire()  # a connection that is never given back
    backend = leaked.get_server_pid()
    runtime.on_stop(runs)
    runtime.on_stop(hangs)  # runs first (reverse order), and never returns

    exiting = asyncio.create_task(runtime.__aexit__(None, None, None))
    done, _ = await asyncio.wait({exiting}, timeout=15)

    assert exiting in done, "the shutdown hung"
    exiting.result()
    assert later_steps == ["ran"]  # the hung step was left behind, the next ones ran
    # the pool was closed hard rather than waited on forever: the server ended that session
    assert await _backend_ends(config, backend)


async def _backend_ends(config: CallCenterConfig, pid: int, *, within_s: float = 5.0) -> bool:
    conn = await asyncpg.connect(config.database.url)
    try:
        deadline = asyncio.get_running_loop().time() + within_s
        while asyncio.get_running_loop().time() < deadline:
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await conn.close()
