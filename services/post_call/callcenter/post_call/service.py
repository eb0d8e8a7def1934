"""Run the configured post-call steps: one durable pull consumer per step and subject.

``post_call.steps`` (or ``CALLCENTER_POST_CALL__STEPS='["email"]'``) selects the steps a process
runs, so each step can be deployed and scaled on its own. Dead letters go to the JetStream
dead-letter stream and to the ``dead_letters`` table; MAX_DELIVERIES advisories (a process died on
the last attempt) are recorded the same way.
"""

from __future__ import annotations

import asyncio
import contextlib

from callcenter.common.bus.consumer import (
    PullConsumer,
    jetstream_dead_letter_sink,
    watch_max_deliveries,
)
from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.db.pool import StatelessConnection
from callcenter.common.logging import get_logger
from callcenter.common.runtime import ServiceRuntime
from callcenter.post_call.deadletters import fan_out, postgres_dead_letter_sink
from callcenter.post_call.steps import Step, StepContext, build_steps
from callcenter.post_call.telemetry import setup_metrics, shutdown_metrics

log = get_logger(__name__)


class PostCallWorkers:
    """The steps of one process and their consumers, started and stopped together."""

    def __init__(self, *, ctx: StepContext, steps: list[Step]) -> None:
        self.ctx = ctx
        self.steps = steps
        bus = ctx.bus
        settings = ctx.config.post_call
        self.step_of = {step.durable(s): step.name for step in steps for s in step.subjects}
        prefix = ctx.config.nats.subject_prefix
        self.sink = fan_out(
            [
                jetstream_dead_letter_sink(bus.js, prefix=prefix),
                postgres_dead_letter_sink(ctx.db, step_of=self.step_of, metrics=ctx.metrics),
            ]
        )
        self.consumers: list[PullConsumer] = [
            bus.consumer(
                durable=step.durable(subject),
                subject=subject,
                handler=step.deliver,
                max_deliver=settings.max_deliver,
                ack_wait_s=settings.ack_wait_s,
                retry_delays_s=settings.retry_delays_s,
                dead_letter=[self.sink],
                concurrency=settings.concurrency,
                batch=settings.batch_size if step.batches else 10,
                batch_handler=step.deliver_batch if step.batches else None,
            )
            for step in steps
            for subject in step.subjects
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        self._advisories = None

    async def start(self) -> None:
        """Open the steps, watch MAX_DELIVERIES advisories, start every consumer."""
        for step in self.steps:
            await step.start()
        bus = self.ctx.bus
        self._advisories = await watch_max_deliveries(
            nc=bus.nc,
            js=bus.js,
            stream=bus.settings.stream,
            consumers=list(self.step_of),
            sink=self.sink,
            prefix=bus.settings.subject_prefix,
        )
        for consumer in self.consumers:
            task = asyncio.create_task(consumer.run(), name=f"consumer-{consumer.name}")
            self._tasks.add(task)
        log.info("post-call steps running", steps=[s.name for s in self.steps])

    @property
    def healthy(self) -> bool:
        """True while every consumer loop is running."""
        return all(not task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Stop fetching, let in-flight messages finish, close the steps."""
        for consumer in self.consumers:
            await consumer.stop()
        if self._tasks:
            done = await asyncio.gather(*self._tasks, return_exceptions=True)
            for result in done:
                if isinstance(result, Exception):
                    log.error("consumer ended with an error", error=repr(result))
        self._tasks.clear()
        if self._advisories is not None:
            with contextlib.suppress(Exception):
                await self._advisories.unsubscribe()
        for step in self.steps:
            await step.close()


async def serve(config: CallCenterConfig | None = None) -> None:
    """Serve until SIGTERM."""
    config = config or load_config()
    settings = config.post_call
    runtime = ServiceRuntime(
        name="post_call",
        config=config,
        host=settings.health_host,
        port=settings.health_port,
        needs_db=True,
        # no step keeps session state; the listener undoes its LISTEN (turns_stored.py)
        db_connection_class=StatelessConnection,
    )
    async with runtime:
        assert runtime.db is not None
        ctx = StepContext(
            config=config,
            db=runtime.db,
            bus=runtime.bus,
            metrics=setup_metrics(service="post_call", settings=config.telemetry),
        )
        workers = PostCallWorkers(ctx=ctx, steps=build_steps(settings.steps, ctx=ctx))

        async def consumers_ok() -> bool:
            return workers.healthy

        runtime.readiness.add("consumers", consumers_ok)
        await workers.start()
        runtime.on_stop(workers.stop)
        await runtime.start_http()
        await runtime.wait_for_shutdown()
    shutdown_metrics()
