"""The client of ``conversation.turn``: every channel runs its turns through it.

::

    client = ConversationClient(bus=bus, first_timeout_s=30)
    stream = await client.stream_turn(TurnRequest(call_id=call_id, channel="chat", text=text))
    async for chunk in stream:          # DeltaChunk | ToolChunk | DoneChunk, validated
        ...
    await stream.cancel(delivered_text=heard)   # stop it, or cut the stored answer afterwards
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import ValidationError

from callcenter.common.bus.bus import Bus
from callcenter.common.bus.streaming import STREAM_ID_HEADER, ReplyStream, StreamError
from callcenter.common.bus.streaming import stream_request as _stream_request
from callcenter.common.contracts.subjects import CONVERSATION_TURN, CONVERSATION_TURN_CANCEL
from callcenter.common.contracts.turn import (
    DeltaChunk,
    DoneChunk,
    OwnedChunk,
    ToolChunk,
    TurnCancel,
    TurnRequest,
    parse_chunk,
)


class TurnStream:
    """The streamed reply of one turn.

    Iterate it for the chunks (each validated; a malformed one ends the stream with
    :class:`StreamError` ``bad_chunk``). ``done`` is the :class:`DoneChunk` once it came, ``text``
    the reply text received so far.
    """

    def __init__(self, *, client: ConversationClient, stream: ReplyStream) -> None:
        self._client = client
        self._stream = stream
        self.done: DoneChunk | None = None
        self.owned: OwnedChunk | None = None
        self._deltas: list[str] = []

    @property
    def stream_id(self) -> str:
        """The id a cancel names (also after the reply ended)."""
        return self._stream.stream_id

    @property
    def finished(self) -> bool:
        """Whether the server ended the stream (or it was cancelled)."""
        return self._stream.finished

    @property
    def text(self) -> str:
        """The reply text received so far (the deltas joined)."""
        return "".join(self._deltas)

    def __aiter__(self) -> AsyncIterator[DeltaChunk | ToolChunk | DoneChunk | OwnedChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DeltaChunk | ToolChunk | DoneChunk | OwnedChunk]:
        async for raw in self._stream:
            try:
                chunk = parse_chunk(raw.data)
            except ValidationError as exc:
                await self._stream.close()
                raise StreamError("bad_chunk", f"not a conversation.turn chunk: {exc}") from exc
            if isinstance(chunk, DeltaChunk):
                self._deltas.append(chunk.text)
            elif isinstance(chunk, DoneChunk):
                self.done = chunk
            elif isinstance(chunk, OwnedChunk):
                self.owned = chunk
            yield chunk

    async def reply(self) -> DoneChunk:
        """Read the whole reply; its :class:`DoneChunk`.

        Raises:
            StreamError: the turn failed, timed out, or ended without a done chunk; code
                ``owned`` when a person owns the conversation (the bot did not answer).

        """
        async for _chunk in self:
            pass
        if self.owned is not None:
            raise StreamError("owned", f"a person owns the conversation ({self.owned.owner})")
        if self.done is None:
            raise StreamError("incomplete", "the turn ended without a done chunk")
        return self.done

    async def cancel(self, *, delivered_text: str = "") -> None:
        """Stop the turn; ``delivered_text`` is what the customer actually received.

        After the reply ended this still tells the service, which cuts the stored answer to
        ``delivered_text`` (voice: the reply was generated faster than it was spoken).
        """
        await self._client.cancel(self.stream_id, delivered_text=delivered_text)
        self._stream.finished = True
        await self._stream.close()


class ConversationClient:
    """Runs turns over ``conversation.turn`` for one process (any channel)."""

    def __init__(
        self, *, bus: Bus, first_timeout_s: float = 30.0, idle_timeout_s: float | None = None
    ) -> None:
        """Create the client.

        Args:
            bus: the process's bus.
            first_timeout_s: how long to wait for the first chunk.
            idle_timeout_s: how long to wait between chunks (default: ``first_timeout_s``).

        """
        self._bus = bus
        self._first_timeout = first_timeout_s
        self._idle_timeout = first_timeout_s if idle_timeout_s is None else idle_timeout_s

    async def stream_turn(self, request: TurnRequest) -> TurnStream:
        """Send one turn; its reply streams back on the returned :class:`TurnStream`."""
        stream = await _stream_request(
            self._bus.nc,
            self._bus.subject(CONVERSATION_TURN),
            request.to_bytes(),
            first_timeout_s=self._first_timeout,
            idle_timeout_s=self._idle_timeout,
        )
        return TurnStream(client=self, stream=stream)

    async def cancel(self, stream_id: str, *, delivered_text: str = "") -> None:
        """Cancel the turn streaming as ``stream_id`` (or cut its stored answer if it ended)."""
        await self._bus.nc.publish(
            self._bus.subject(CONVERSATION_TURN_CANCEL),
            TurnCancel(delivered_text=delivered_text).to_bytes(),
            headers={STREAM_ID_HEADER: stream_id},
        )
