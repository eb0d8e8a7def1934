"""One turn of a conversation: session in, streamed reply out, session and event after.

The tool loop asks the first model that answers (the configured LLMs in order, each retried on
rate limits and server errors, then the offline engine), runs the tools it asks for concurrently
through the tools service, feeds the results back, and stops when the model answers in text or
the round limit is reached. Text reaches the customer as it is generated, shaped for the channel.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from callcenter.common.config import CallCenterConfig
from callcenter.common.contracts import (
    DeltaChunk,
    DoneChunk,
    ToolCallContext,
    ToolChunk,
    ToolOutcome,
    TurnCancel,
    TurnRequest,
    TurnTransfer,
)
from callcenter.common.contracts import tools as tool_wire
from callcenter.common.events import Event, ToolCallRecord, TurnCompleted
from callcenter.common.logging import get_logger
from callcenter.common.pii import redact, redact_value
from callcenter.conversation.channel import ChannelWriter
from callcenter.conversation.history import keep_delivered, trim_history
from callcenter.conversation.linked_verification import carry_verification
from callcenter.conversation.llm.base import (
    ChatModel,
    ModelFailure,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
)
from callcenter.conversation.prompts import system_prompt
from callcenter.conversation.session import Session, SessionStore
from callcenter.conversation.tools_client import CachedToolsClient
from callcenter.conversation.turn import TurnState

log = get_logger(__name__)

END_CALL = "end_call"
END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": END_CALL,
        "description": (
            "End the conversation after the customer has said goodbye or needs nothing else. "
            "Say a short goodbye in the same message."
        ),
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}
TRANSFER_TOOL = "transfer_to_agent"
GOODBYE_TEXT = "Thank you for contacting us. Goodbye!"
SORRY_TEXT = "I'm sorry, I couldn't finish that just now. Could you tell me again what you need?"
CUT_OFF_TEXT = "Sorry, I lost my train of thought there. Could you say that again?"

Chunk = DeltaChunk | ToolChunk | DoneChunk


class CancelView(Protocol):
    """How a turn learns it was cancelled (``StreamingRequest`` is one)."""

    cancelled: bool
    cancel_payload: bytes


class AllModelsFailed(Exception):
    """Every model, the offline engine included, failed for this step."""


class CutOff(Exception):
    """A model failed after part of its answer had already gone to the customer."""


class ConversationEngine:
    """Runs turns; shared by every request a replica serves."""

    def __init__(
        self,
        *,
        config: CallCenterConfig,
        store: SessionStore,
        tools: CachedToolsClient,
        models: list[ChatModel],
        publish: Callable[[Event], Awaitable[Any]] | None = None,
    ) -> None:
        self.config = config
        self.settings = config.conversation
        self.store = store
        self.tools = tools
        self.models = models
        self._publish = publish
        self._backoff_s = config.llm.retry_backoff_s

    # -- one turn ------------------------------------------------------------------------

    async def turn(
        self, request: TurnRequest, *, cancel: CancelView | None = None
    ) -> AsyncIterator[Chunk]:
        """Stream the reply chunks of one turn (``delta``, ``tool``, then ``done``)."""
        lock = await self.store.acquire(request.call_id)
        event: TurnCompleted | None = None
        published = False
        try:
            session = await self.store.load(request.call_id)
            _update_session(session, request)
            turn = TurnState(
                request=request,
                writer=ChannelWriter(
                    channel=request.channel,
                    sms_max_chars=self.settings.sms_max_chars,
                    voice_max_chars=self.settings.voice_max_chars,
                ),
            )
            turn.messages.append({"role": "user", "content": request.text})
            try:
                if request.caller.linked_call_id and not session.verified_customer_id:
                    await self._carry_verification(session, request)
                if request.caller.verified_by_caller_id and not session.verified_customer_id:
                    await self._verify_caller(session, turn)
                if cancel is None or not cancel.cancelled:
                    async for chunk in self._loop(session, turn):
                        yield chunk
                if cancel is not None and cancel.cancelled:
                    raise asyncio.CancelledError
                event = await self._finish(session, turn, interrupted=False)
                published = await self._emit(event)
                yield DoneChunk(
                    turn_index=event.turn_index,
                    text=turn.writer.text,
                    end_call=turn.end_call,
                    transfer=turn.transfer,
                    engine=turn.engine,
                )
            except (asyncio.CancelledError, GeneratorExit):
                if event is None:
                    turn.keep_delivered(_delivered(cancel, turn))
                    event = await self._finish(session, turn, interrupted=True)
                    log.info("turn cancelled", turn_index=event.turn_index)
                elif cancel is not None and cancel.cancelled:
                    # cancelled just after it finished: the stored answer is cut all the same
                    await self._cut_stored(session, event.turn_index, _delivered(cancel, turn))
                if not published:
                    published = await self._emit(event)
                raise
        finally:
            await self.store.release(request.call_id, lock)

    async def trim_delivered(self, call_id: str, turn_index: int, delivered: str) -> bool:
        """A finished turn was only partly heard (the voice pipeline reports it after barge-in).

        Returns:
            whether the stored history was cut (False when a later turn came first).

        """
        lock = await self.store.acquire(call_id)
        try:
            session = await self.store.load(call_id)
            return await self._cut_stored(session, turn_index, delivered)
        finally:
            await self.store.release(call_id, lock)

    async def _cut_stored(self, session: Session, turn_index: int, delivered: str) -> bool:
        if session.turn_index != turn_index + 1 or not session.last_turn_messages:
            log.info("late cancel for an older turn ignored", turn_index=turn_index)
            return False
        count = session.last_turn_messages
        kept = keep_delivered(session.history[-count:], redact(delivered))
        session.history = session.history[:-count] + kept
        session.last_turn_messages = len(kept)
        await self.store.save(session)
        log.info("stored answer cut to what was heard", turn_index=turn_index)
        return True

    async def _emit(self, event: TurnCompleted) -> bool:
        """Publish turn.completed; a failure is logged (the reply is out, the session saved)."""
        if self._publish is None:
            return True
        try:
            await self._publish(event)
            return True
        except Exception:
            log.exception("turn.completed not published", turn_index=event.turn_index)
            return False

    async def _carry_verification(self, session: Session, request: TurnRequest) -> None:
        """The edge proved the caller holds another conversation: its verified customer carries."""
        linked = request.caller.linked_call_id or ""
        verified = await carry_verification(
            self.store, session, linked_call_id=linked, channel=request.channel
        )
        if verified is None:
            return
        log.info("caller verified in the linked conversation", linked_call_id=linked)
        if self._publish is None:
            return
        try:  # the calls table learns who called (the session is verified either way)
            await self._publish(verified)
        except Exception:
            log.exception("call.customer_verified not published", linked_call_id=linked)

    async def _verify_caller(self, session: Session, turn: TurnState) -> None:
        """The edge vouches for the caller's number (e.g. SMS): verify by caller ID, once."""
        if session.caller_id_checked or not session.caller_number:
            return
        session.caller_id_checked = True
        arguments = {"method": "caller_id"}
        call = ToolCallRequest(
            id="caller-id-" + uuid.uuid4().hex[:8],
            name="verify_identity",
            arguments=json.dumps(arguments),
        )
        context = ToolCallContext(
            call_id=session.call_id,
            channel=turn.request.channel,
            verified_customer_id=None,
            caller_number=session.caller_number,
        )
        records: dict[str, ToolCallRecord] = {}
        started = time.monotonic()
        outcome = await self._execute(call, arguments, context, records)
        turn.tool_time_s += time.monotonic() - started
        turn.records.extend(records.values())
        self._apply(call, outcome, arguments, session, turn)

    async def _finish(
        self, session: Session, turn: TurnState, *, interrupted: bool
    ) -> TurnCompleted:
        """Store the turn in the session; build its turn.completed event."""
        index = session.turn_index
        session.turn_index += 1
        # card numbers, SSNs and one-time codes served this turn; they are not kept for later ones
        kept = [redact_value(message) for message in turn.messages]
        session.history = trim_history(
            session.history + kept,  # type: ignore[operator]
            self.settings.history_token_budget,
        )
        session.last_turn_messages = len(kept)
        session.ended = session.ended or turn.end_call
        await self.store.save(session)
        assistant_text = " ".join(
            m["content"]
            for m in turn.messages[1:]
            if m.get("role") == "assistant" and m.get("content")
        )
        if not interrupted:
            assistant_text = turn.writer.text
        return TurnCompleted(
            call_id=session.call_id,
            channel=turn.request.channel,  # type: ignore[arg-type]
            turn_index=index,
            user_text=redact(turn.request.text),
            assistant_text=redact(assistant_text),
            tool_calls=turn.records,
            latency=turn.latency(),
            interrupted=interrupted,
            engine=turn.engine,
            customer_id=session.verified_customer_id,
        )

    # -- the tool loop -------------------------------------------------------------------

    async def _loop(self, session: Session, turn: TurnState) -> AsyncIterator[Chunk]:
        schema = await self.tools.schema()
        tools = [*schema, END_CALL_TOOL]
        max_rounds = self.settings.max_tool_rounds
        model_index = 0
        for round_no in range(max_rounds + 1):
            turn.rounds = round_no + 1
            messages = [
                {
                    "role": "system",
                    "content": system_prompt(
                        self.settings,
                        channel=turn.request.channel,
                        verified_customer_id=session.verified_customer_id,
                    ),
                },
                *trim_history(session.history, self.settings.history_token_budget),
                *turn.messages,
            ]
            request = ModelRequest(
                messages=messages,
                tools=tools,
                session=session,
                turn=turn,
                allow_tools=round_no < max_rounds,
            )
            start = len(turn.writer.text)
            turn.writer.new_round()
            calls: list[ToolCallRequest] = []
            try:
                async for item in self._ask(request, turn, model_index):
                    if isinstance(item, int):
                        model_index = item
                    elif isinstance(item, TextDelta):
                        for piece in turn.writer.feed(item.text):
                            yield self._delta(turn, piece)
                    elif request.allow_tools:
                        calls.append(item)
            except CutOff:
                for piece in turn.writer.feed(" " + CUT_OFF_TEXT):
                    yield self._delta(turn, piece)
                calls = []
            except AllModelsFailed:
                log.error("no model could answer", failures=turn.failures)
                calls = []
            for piece in turn.writer.flush():
                yield self._delta(turn, piece)
            assistant: dict[str, Any] = {
                "role": "assistant",
                "content": turn.writer.text[start:].strip() or None,
            }
            if not calls:
                if assistant["content"]:
                    turn.add_assistant(assistant)
                break
            assistant["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or "{}"},
                }
                for call in calls
            ]
            outcomes: dict[str, ToolOutcome] = {}
            async for chunk in self._run_tools(calls, session, turn, outcomes):
                yield chunk
            turn.add_assistant(assistant)
            for call in calls:
                turn.messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": json.dumps(outcomes[call.id].as_reply(), default=str),
                    }
                )
            if turn.end_call and not any(c.name != END_CALL for c in calls):
                break  # the model said goodbye and hung up: no further round needed
        if not turn.writer.text.strip():
            fallback = GOODBYE_TEXT if turn.end_call else _last_failure_message(turn) or SORRY_TEXT
            start = len(turn.writer.text)
            for piece in [*turn.writer.feed(fallback), *turn.writer.flush()]:
                yield self._delta(turn, piece)
            turn.add_assistant({"role": "assistant", "content": turn.writer.text[start:].strip()})

    def _delta(self, turn: TurnState, piece: str) -> DeltaChunk:
        turn.mark_output()
        return DeltaChunk(text=piece)

    async def _ask(
        self, request: ModelRequest, turn: TurnState, first: int
    ) -> AsyncIterator[TextDelta | ToolCallRequest | int]:
        """The next step from the first model that answers; yields the model's index first."""
        for index in range(first, len(self.models)):
            model = self.models[index]
            attempt = 0
            while True:
                spoke = False
                try:
                    stream = model.stream(request)
                    try:
                        async for item in stream:
                            if not spoke:
                                spoke = True
                                yield index
                            yield item
                    finally:
                        await stream.aclose()  # type: ignore[attr-defined]
                    if not spoke:
                        yield index
                    turn.engine = model.name
                    return
                except Exception as exc:
                    failure = (
                        exc
                        if isinstance(exc, ModelFailure)
                        else ModelFailure(repr(exc), retryable=False)
                    )
                    turn.failures.append(f"{model.name}: {failure}")
                    log.warning(
                        "model failed",
                        model=model.name,
                        attempt=attempt + 1,
                        retryable=failure.retryable,
                        error=str(failure)[:300],
                    )
                    if spoke:
                        turn.engine = model.name
                        raise CutOff from exc
                    if failure.retryable and attempt < model.retries:
                        attempt += 1
                        await asyncio.sleep(self._backoff_s * (2 ** (attempt - 1)))
                        continue
                    break
        raise AllModelsFailed

    # -- tools ---------------------------------------------------------------------------

    async def _run_tools(
        self,
        calls: list[ToolCallRequest],
        session: Session,
        turn: TurnState,
        outcomes: dict[str, ToolOutcome],
    ) -> AsyncIterator[Chunk]:
        """Run the calls of one model message concurrently, reporting each start and finish."""
        context = ToolCallContext(
            call_id=session.call_id,
            channel=turn.request.channel,
            verified_customer_id=session.verified_customer_id,
            caller_number=session.caller_number,
        )
        arguments = {call.id: _parse_arguments(call.arguments) for call in calls}
        started = time.monotonic()
        records: dict[str, ToolCallRecord] = {}
        tasks = {
            asyncio.create_task(self._execute(call, arguments[call.id], context, records)): call
            for call in calls
        }
        try:
            for call in calls:
                yield ToolChunk(name=call.name, id=call.id, status="started")
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    call = tasks[task]
                    outcomes[call.id] = task.result()
                    yield ToolChunk(
                        name=call.name,
                        id=call.id,
                        status="finished",
                        success=outcomes[call.id].success,
                    )
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            turn.tool_time_s += time.monotonic() - started
            turn.records.extend(records[c.id] for c in calls if c.id in records)
        for call in calls:
            self._apply(call, outcomes[call.id], arguments[call.id] or {}, session, turn)

    async def _execute(
        self,
        call: ToolCallRequest,
        arguments: dict[str, Any] | None,
        context: ToolCallContext,
        records: dict[str, ToolCallRecord],
    ) -> ToolOutcome:
        """One tool call (``arguments`` None: the model's were not a JSON object).

        Anything that goes wrong becomes a failed outcome.
        """
        started = time.monotonic()
        if arguments is None:
            arguments = {}
            outcome = ToolOutcome.failure(
                "invalid_arguments", "The tool arguments were not a valid JSON object."
            )
        else:
            if call.name == END_CALL:
                outcome = ToolOutcome(success=True, data={"ended": True})
            elif call.name not in self.tools.names and call.name not in {
                t["function"]["name"] for t in await self.tools.schema(force=True)
            }:
                log.warning("model called an unknown tool", tool=call.name)
                outcome = ToolOutcome.failure(
                    "unknown_tool",
                    f"There is no tool named {call.name!r}; use one of the listed tools.",
                )
            else:
                request = tool_wire.ToolCallRequest(
                    name=call.name,
                    arguments=arguments,
                    context=context.model_copy(update={"tool_call_id": call.id}),
                )
                try:
                    outcome = await self.tools.call(request)
                except Exception:
                    log.exception("tool call failed", tool=call.name)
                    outcome = ToolOutcome.failure(
                        "tool_failed", "Something went wrong on our side while I was checking that."
                    )
        records[call.id] = ToolCallRecord(
            id=call.id,
            name=call.name,
            arguments=redact_value(arguments),  # type: ignore[arg-type]
            success=outcome.success,
            result=redact_value(outcome.data) if outcome.success else None,  # type: ignore[arg-type]
            error=None if outcome.success else f"{outcome.error}: {outcome.message}",
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        )
        return outcome

    def _apply(
        self,
        call: ToolCallRequest,
        outcome: ToolOutcome,
        args: dict[str, Any],
        session: Session,
        turn: TurnState,
    ) -> None:
        """What a tool result changes in the session and the turn."""
        if call.name == END_CALL and outcome.success:
            turn.end_call = True
        if not outcome.success:
            return
        verified = outcome.data.get("verified_customer_id")
        if isinstance(verified, str) and verified:
            session.verified_customer_id = verified
        if call.name == TRANSFER_TOOL or isinstance(outcome.data.get("transfer"), dict):
            details = (
                outcome.data.get("transfer")
                if isinstance(outcome.data.get("transfer"), dict)
                else outcome.data
            )
            turn.transfer = TurnTransfer(
                reason=str(details.get("reason") or args.get("reason") or "customer request"),
                summary=str(details.get("summary") or args.get("summary") or "")
                or _summary(session, turn),
                queue=str(details["queue"]) if details.get("queue") else None,
            )
        if outcome.data.get("end_call") is True:
            turn.end_call = True


def _summary(session: Session, turn: TurnState) -> str:
    """What the customer said lately, for the agent who takes over."""
    said = [m.get("content") or "" for m in session.history if m.get("role") == "user"]
    said = [*said[-3:], turn.request.text]
    customer = session.verified_customer_id or "unverified caller"
    return redact(f"{customer}: " + " / ".join(s for s in said if s))[:500]


def _update_session(session: Session, request: TurnRequest) -> None:
    session.channel = request.channel
    if request.caller.number and not session.caller_number:
        session.caller_number = request.caller.number


def _parse_arguments(raw: str | None) -> dict[str, Any] | None:
    """The model's tool arguments (a JSON object), parsed once; None when they are not one."""
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _delivered(cancel: CancelView | None, turn: TurnState) -> str:
    """What the customer actually received, as the canceller reported it."""
    if cancel is not None and cancel.cancelled:
        try:
            return TurnCancel.from_bytes(cancel.cancel_payload or b"{}").delivered_text
        except ValueError:
            return ""
    return turn.writer.text


def _last_failure_message(turn: TurnState) -> str | None:
    for record in reversed(turn.records):
        if not record.success and record.error and ": " in record.error:
            code, message = record.error.split(": ", 1)
            if code not in ("unknown_tool", "invalid_arguments"):
                return message
    return None
