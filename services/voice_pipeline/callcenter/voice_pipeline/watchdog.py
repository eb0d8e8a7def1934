"""The call's watchdog: its maximum length, and speech providers that stay down.

:class:`CallWatchdog` sits before the speech-to-text service (after the VAD and the audio
chunker, so it sees the caller's audio in joined frames), so every ``ErrorFrame`` the STT or TTS
pushes upstream passes it. pipecat reconnects a dropped Deepgram or ElevenLabs socket by itself
and reports each failed attempt with an ``ErrorFrame`` (or marks the service unusable when it
gives up). A provider is *down* once a failure was followed by another within the retry window
and it still was failing ``provider_down_s`` after the first, or as soon as pipecat gives up on
it; one drop that reconnects is not an outage. The watchdog only tells: it emits events, and
whoever runs the call decides what the caller hears.

Events:

- ``on_call_too_long(watchdog)``: the call reached ``max_call_s``.
- ``on_provider_down(watchdog, processor)``: ``processor`` stayed down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from callcenter.common.logging import get_logger

log = get_logger(__name__)

#: Longer than pipecat's longest reconnect back-off (10 s): failures closer than this are one
#: outage, a failure after a longer quiet spell starts a new one.
OUTAGE_GAP_S = 12.0


@dataclass(slots=True)
class _Outage:
    started: float
    last_failure: float
    failures: int = 1


class CallWatchdog(FrameProcessor):
    """Times the call and watches the speech providers' error reports; emits events."""

    def __init__(
        self,
        *,
        providers: Iterable[FrameProcessor],
        max_call_s: float,
        provider_down_s: float,
        call_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._providers = list(providers)
        self._max_call_s = max_call_s
        self._provider_down_s = provider_down_s
        self._call_id = call_id
        self._outages: dict[FrameProcessor, _Outage] = {}
        self._timers: set[asyncio.Task[None]] = set()
        self._tripped = False
        self._register_event_handler("on_call_too_long")
        self._register_event_handler("on_provider_down")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Start the call timer; note provider failures; pass every frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._arm(self._max_call_s, "max-call", self._call_too_long)
        elif isinstance(frame, ErrorFrame) and frame.processor in self._providers:
            await self._failure(frame.processor)
        await self.push_frame(frame, direction)

    def _arm(self, delay_s: float, name: str, action: Callable[[], Awaitable[None]]) -> None:
        async def later() -> None:
            await asyncio.sleep(delay_s)
            await action()

        task = self.create_task(later(), name)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _call_too_long(self) -> None:
        if not self._tripped:
            self._tripped = True
            await self._call_event_handler("on_call_too_long")

    async def _failure(self, provider: FrameProcessor) -> None:
        now = time.monotonic()
        outage = self._outages.get(provider)
        if outage is None or now - outage.last_failure > OUTAGE_GAP_S:
            log.warning("speech provider failing", call_id=self._call_id, provider=str(provider))
            outage = _Outage(started=now, last_failure=now)
            self._outages[provider] = outage
            self._arm(
                self._provider_down_s, "provider-check", lambda: self._check(provider, outage)
            )
        else:
            outage.last_failure = now
            outage.failures += 1
        await self._check(provider, outage)

    async def _check(self, provider: FrameProcessor, outage: _Outage) -> None:
        """Declare ``provider`` down if it gave up, or kept failing for ``provider_down_s``."""
        if self._tripped or self._outages.get(provider) is not outage:
            return
        lasted = time.monotonic() - outage.started >= self._provider_down_s
        if not provider.is_usable or (lasted and outage.failures >= 2):
            self._tripped = True
            log.warning("speech provider down", call_id=self._call_id, provider=str(provider))
            await self._call_event_handler("on_provider_down", provider)
        elif lasted:
            self._outages.pop(provider, None)  # one failure, then it reconnected: no outage

    async def cleanup(self) -> None:
        """Stop the timers."""
        await super().cleanup()
        for task in list(self._timers):
            await self.cancel_task(task)
