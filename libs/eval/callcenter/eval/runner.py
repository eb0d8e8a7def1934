"""Playing scenarios against a running system, several at a time, each on fresh data."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import asyncpg

from callcenter.common.logging import get_logger
from callcenter.eval import fixtures
from callcenter.eval.channels import Channel, ChatChannel, Reply, SmsChannel
from callcenter.eval.scenarios import Scenario
from callcenter.eval.scoring import check_never, check_reply, check_state

log = get_logger(__name__)


@dataclass(slots=True)
class Target:
    """Where the system under test answers."""

    gateway_url: str
    public_base_url: str
    twilio_auth_token: str | None
    timeout_s: float = 30.0


@dataclass(slots=True)
class RunResult:
    """One run of one scenario."""

    scenario: Scenario
    attempt: int
    passed: bool = False
    skipped: str | None = None
    problems: list[str] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    call_id: str | None = None


class Runner:
    """Runs scenarios (each ``repeat`` times) with at most ``concurrency`` at once."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        target: Target,
        concurrency: int = 4,
        keep_data: bool = False,
        seed: int | None = None,
    ) -> None:
        self.pool = pool
        self.target = target
        self.limit = asyncio.Semaphore(concurrency)
        self.keep_data = keep_data
        self.rng = random.Random(seed)

    async def run(self, scenarios: list[Scenario], *, repeat: int = 1) -> list[RunResult]:
        """Every scenario ``repeat`` times; results in scenario order."""
        jobs = [self._guarded(s, attempt) for s in scenarios for attempt in range(1, repeat + 1)]
        return list(await asyncio.gather(*jobs))

    async def _guarded(self, scenario: Scenario, attempt: int) -> RunResult:
        async with self.limit:
            result = RunResult(scenario=scenario, attempt=attempt)
            try:
                await self.run_one(scenario, result)
            except Exception as exc:  # one broken run must not stop the others
                log.warning("scenario run failed", scenario=scenario.id, error=repr(exc))
                result.problems.append(f"the run itself failed: {exc!r}")
                result.passed = False
            return result

    def _channel(self, scenario: Scenario, fixture: fixtures.Fixture) -> Channel | str:
        if scenario.channel == "chat":
            return ChatChannel(gateway_url=self.target.gateway_url, timeout_s=self.target.timeout_s)
        if scenario.channel == "sms":
            if not self.target.twilio_auth_token:
                return "SMS needs twilio.auth_token (TWILIO_AUTH_TOKEN) to sign webhooks"
            return SmsChannel(
                gateway_url=self.target.gateway_url,
                public_base_url=self.target.public_base_url,
                auth_token=self.target.twilio_auth_token,
                customer=fixture.values["phone"],
                timeout_s=self.target.timeout_s,
                find_call=self._sms_call,
            )
        return "voice scenarios need the voice simulator and speech providers"

    async def _sms_call(self, customer: str) -> str | None:
        return await self.pool.fetchval(
            "SELECT call_id FROM calls WHERE channel = 'sms' AND from_number = $1 "
            "ORDER BY started_at DESC LIMIT 1",
            customer,
        )

    async def _transcript(self, call_id: str | None, *, turns: int) -> None:
        """Wait (bounded) until post-call has stored ``turns`` turns of ``call_id``."""
        deadline = asyncio.get_running_loop().time() + self.target.timeout_s
        while call_id and asyncio.get_running_loop().time() < deadline:
            try:
                stored = await self.pool.fetchval(
                    "SELECT count(*) FROM turns WHERE call_id = $1", call_id
                )
            except asyncpg.UndefinedTableError:
                return  # no post-call tables: nothing to wait for
            if stored >= turns:
                return
            await asyncio.sleep(0.2)

    async def run_one(self, scenario: Scenario, result: RunResult) -> None:
        """Play ``scenario`` on fresh data and score it into ``result``."""
        async with self.pool.acquire() as conn:
            fixture = await fixtures.create(conn, rng=random.Random(self.rng.random()))
        try:
            channel = self._channel(scenario, fixture)
            if isinstance(channel, str):
                result.skipped = channel
                return
            replies: list[Reply] = []
            await channel.open()
            try:
                for index, turn in enumerate(scenario.turns, start=1):
                    if turn.new_conversation:
                        await channel.close()
                        channel = self._channel(scenario, fixture)
                        assert not isinstance(channel, str)
                        await channel.open()
                        result.transcript.append(("(a new conversation)", ""))
                    said = fixture.fill(turn.say)
                    reply = await channel.say(said)
                    replies.append(reply)
                    result.transcript.append((said, reply.text))
                    result.problems += check_reply(turn, reply, fixture, index=index)
                    if reply.ended and index < len(scenario.turns):
                        result.problems.append(f"turn {index}: the conversation ended early")
                        break
            finally:
                result.call_id = channel.call_id
                await channel.close()
            result.problems += check_never(scenario.never_say, replies, fixture)
            if scenario.channel == "sms" and scenario.expect.handoff is not None:
                # what SMS did is only in the transcript, which post-call writes a moment later
                await self._transcript(result.call_id, turns=len(replies))
            async with self.pool.acquire() as conn:
                result.problems += await check_state(
                    conn, scenario.expect, fixture, call_id=result.call_id, replies=replies
                )
            result.passed = not result.problems
        finally:
            if not self.keep_data:
                await self._remove(fixture)

    async def _remove(self, fixture: fixtures.Fixture) -> None:
        """Delete the run's data; a failure to clean up is logged, not scored."""
        try:
            async with self.pool.acquire() as conn:
                await fixtures.remove(conn, fixture)
        except asyncpg.PostgresError as exc:
            log.warning("eval data left behind", customers=fixture.customer_ids, error=str(exc))
