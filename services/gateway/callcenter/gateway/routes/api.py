"""REST API: calls, transcripts, summaries, post-call step status, tickets, dead letters (issue 7).

Read-only views over the tables the edges (``calls``) and the post-call steps (``turns``,
``summaries``, ``post_call_steps``, ``emails``, ``crm_activities``, ``tickets``,
``dead_letters``) write. post_call's tables are read (and an unsubscribe recorded) only through
its query module, :mod:`callcenter.common.queries.post_call`. Lists are paginated with
``limit``/``offset`` and report ``total``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from callcenter.common.logging import get_logger
from callcenter.common.queries import post_call
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.inbox.transcript import HandoffLine, handoff_lines

router = APIRouter(prefix="/api", tags=["api"])

log = get_logger(__name__)
Deps = Annotated[GatewayDeps, Depends(request_deps)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]

#: The post-call steps, in workflow order (a call shows each, ``pending`` until it ran).
POST_CALL_STEPS = ["transcript", "summary", "crm", "email", "ticket", "metrics"]

Channel = Literal["voice", "sms", "chat", "web_voice"]
Sentiment = Literal["positive", "neutral", "negative"]
StepState = Literal["pending", "done", "skipped", "dead_letter"]
Priority = Literal["low", "normal", "high", "urgent"]


class Call(BaseModel):
    """A call (any channel) as the edges recorded it, with its summary's headline."""

    call_id: str
    channel: Channel
    status: str = Field(description="active or ended")
    from_number: str | None
    to_number: str | None
    customer_id: str | None
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    duration_s: float | None
    turn_count: int | None
    sentiment: Sentiment | None = Field(description="from the summary, once summarised")
    satisfaction: int | None = Field(description="1-5, from the summary")
    resolved: bool | None = Field(description="from the summary")


class CallPage(BaseModel):
    """One page of calls, newest first."""

    items: list[Call]
    total: int
    limit: int
    offset: int


class ToolCall(BaseModel):
    """A tool call made during a turn (arguments and result PII-redacted)."""

    id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    duration_ms: float | None = None


class Turn(BaseModel):
    """One turn of the transcript (PII redacted)."""

    turn_index: int
    user_text: str
    assistant_text: str
    tool_calls: list[ToolCall]
    latency: dict[str, float | None]
    interrupted: bool
    engine: str
    occurred_at: datetime


class Summary(BaseModel):
    """The post-call summary."""

    summary: str
    sentiment: Sentiment
    satisfaction: int = Field(ge=1, le=5)
    resolved: bool
    topics: list[str]
    follow_up_needed: bool
    follow_up: str | None
    engine: str = Field(description="the LLM that wrote it, or offline")
    turns_expected: int
    turns_stored: int
    created_at: datetime


class StepStatus(BaseModel):
    """What one post-call step did for the call."""

    step: str
    status: StepState
    detail: str | None = None
    events: int = Field(0, description="events of this call the step handled")
    updated_at: datetime | None = None


class Ticket(BaseModel):
    """A support ticket (from the post-call ticket step or the create_ticket tool)."""

    ticket_id: str
    call_id: str | None
    customer_id: str | None
    source: str
    priority: Priority
    status: str
    subject: str
    body: str
    link: str | None
    created_at: datetime


class TicketPage(BaseModel):
    """One page of tickets, newest first."""

    items: list[Ticket]
    total: int
    limit: int
    offset: int


class DeadLetter(BaseModel):
    """A message a consumer gave up on, and why."""

    id: int
    consumer: str
    subject: str
    stream_sequence: int
    event_id: str | None
    call_id: str | None
    attempts: int
    reason: str
    payload: Any = Field(None, description="the event as it was (JSON, text or base64)")
    created_at: datetime


class DeadLetterPage(BaseModel):
    """One page of dead letters, newest first."""

    items: list[DeadLetter]
    total: int
    limit: int
    offset: int


#: The item model of each page model.
PAGE_ITEMS: dict[type[BaseModel], type[BaseModel]] = {
    CallPage: Call,
    TicketPage: Ticket,
    DeadLetterPage: DeadLetter,
}


class Email(BaseModel):
    """The follow-up email sent for the call."""

    to_address: str
    subject: str
    body_text: str
    message_id: str
    sent_at: datetime


class CrmActivity(BaseModel):
    """An activity logged on the customer's CRM record."""

    adapter: str
    external_id: str | None
    subject: str
    body: str
    created_at: datetime


class Handoff(BaseModel):
    """What the agent receiving a transferred caller is given: why, and the conversation so far."""

    reason: str | None = None
    summary: str | None = None
    to: str | None = Field(default=None, description="the agent number or queue the call went to")


class CallDetail(BaseModel):
    """Everything about one call."""

    call: Call
    transcript: list[Turn]
    summary: Summary | None
    steps: list[StepStatus] = Field(description="each post-call step, in workflow order")
    tickets: list[Ticket]
    email: Email | None
    crm_activities: list[CrmActivity]
    dead_letters: list[DeadLetter]
    handoff: Handoff | None = Field(
        default=None, description="set when the caller was transferred to a person"
    )
    agent_messages: list[HandoffLine] = Field(
        default_factory=list,
        description="what the customer and the agent wrote while a person owned the conversation",
    )


class _Where:
    """A WHERE clause built from optional filters, with numbered parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, clause: str, value: Any) -> None:
        """Add ``clause`` (each ``?`` is ``value``) unless ``value`` is None."""
        if value is None:
            return
        self.args.append(value)
        self.parts.append(clause.replace("?", f"${len(self.args)}"))

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.parts)) if self.parts else ""

    def page(self, limit: int, offset: int) -> tuple[str, list[Any]]:
        n = len(self.args)
        return f"LIMIT ${n + 1} OFFSET ${n + 2}", [*self.args, limit, offset]


PageT = TypeVar("PageT", bound=BaseModel)


async def _page(
    db: asyncpg.Pool,
    page: type[PageT],
    *,
    select: str,
    where: _Where,
    order: str,
    limit: int,
    offset: int,
) -> PageT:
    """One page of ``select`` filtered by ``where``, with the total count."""
    paging, args = where.page(limit, offset)
    rows = await db.fetch(f"{select} {where.sql()} ORDER BY {order} {paging}", *args)
    total = await db.fetchval(f"SELECT count(*) FROM ({select} {where.sql()}) AS q", *where.args)
    item = PAGE_ITEMS[page]
    return page(items=[item(**dict(r)) for r in rows], total=int(total), limit=limit, offset=offset)


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


CALL_SELECT = post_call.CALLS_WITH_HEADLINE


@router.get("/calls", response_model=CallPage, summary="List calls")
async def list_calls(
    deps: Deps,
    channel: Channel | None = None,
    status: Annotated[str | None, Query(description="active or ended")] = None,
    customer_id: str | None = None,
    sentiment: Sentiment | None = None,
    resolved: bool | None = None,
    max_satisfaction: Annotated[int | None, Query(ge=1, le=5)] = None,
    since: Annotated[date | None, Query(description="started on or after this day")] = None,
    until: Annotated[date | None, Query(description="started on or before this day")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="part of a call id, number or customer id"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CallPage:
    """Calls, newest first, filtered and paginated."""
    where = _Where()
    where.add("c.channel = ?", channel)
    where.add("c.status = ?", status)
    where.add("c.customer_id = ?", customer_id)
    for clause, value in post_call.headline_filters(
        sentiment=sentiment, resolved=resolved, max_satisfaction=max_satisfaction
    ):
        where.add(clause, value)
    where.add("c.started_at >= ?", _start_of(since))
    where.add("c.started_at < ?", _start_of(until + timedelta(days=1)) if until else None)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.add(
            "(c.call_id ILIKE ? OR c.from_number ILIKE ? OR c.to_number ILIKE ? "
            "OR c.customer_id ILIKE ?)",
            pattern,
        )
    return await _page(
        deps.db,
        CallPage,
        select=CALL_SELECT,
        where=where,
        order="started_at DESC, call_id",
        limit=limit,
        offset=offset,
    )


TICKET_COLUMNS = (
    "ticket_id, call_id, customer_id, source, priority, status, subject, body, link, created_at"
)
DEAD_LETTER_COLUMNS = (
    "id, consumer, subject, stream_sequence, event_id, call_id, attempts, reason, payload, "
    "created_at"
)


@router.get("/calls/{call_id}", response_model=CallDetail, summary="One call in full")
async def get_call(call_id: str, deps: Deps) -> CallDetail:
    """The call with its transcript, summary, each post-call step's status, and the rest.

    The rest: tickets, the follow-up email, CRM activities and dead letters.
    """
    db = deps.db
    row = await db.fetchrow(CALL_SELECT + " WHERE c.call_id = $1", call_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"No call {call_id}.")
    turns = await post_call.transcript(db, call_id)
    summary = await post_call.summary(db, call_id)
    step_rows = {r["step"]: r for r in await post_call.step_statuses(db, call_id)}
    tickets = await db.fetch(
        f"SELECT {TICKET_COLUMNS} FROM tickets WHERE call_id = $1 ORDER BY created_at", call_id
    )
    email = await post_call.follow_up_email(db, call_id)
    activities = await post_call.crm_activities(db, call_id)
    dead = await db.fetch(
        f"SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE call_id = $1 ORDER BY id", call_id
    )
    names = POST_CALL_STEPS + sorted(set(step_rows) - set(POST_CALL_STEPS))
    steps = [
        StepStatus(**dict(step_rows[name]))
        if name in step_rows
        else StepStatus(step=name, status="pending")
        for name in names
    ]
    return CallDetail(
        call=Call(**dict(row)),
        transcript=[Turn(**dict(t)) for t in turns],
        summary=Summary(**dict(summary)) if summary else None,
        steps=steps,
        tickets=[Ticket(**dict(t)) for t in tickets],
        email=Email(**dict(email)) if email else None,
        crm_activities=[CrmActivity(**dict(a)) for a in activities],
        dead_letters=[DeadLetter(**dict(d)) for d in dead],
        handoff=await _handoff(deps, call_id),
        agent_messages=await handoff_lines(db, call_id),
    )


async def _handoff(deps: GatewayDeps, call_id: str) -> Handoff | None:
    """The transfer note the voice pipeline left for the agent (kept in Redis for a day)."""
    try:
        raw = await deps.redis.get(deps.key(f"call:{call_id}:handoff"))
        return Handoff.model_validate_json(raw) if raw else None
    except Exception:  # a missing or unreadable note must not hide the rest of the call
        log.warning("handoff note unreadable", call_id=call_id)
        return None


@router.get("/tickets", response_model=TicketPage, summary="List tickets")
async def list_tickets(
    deps: Deps,
    status: Annotated[str | None, Query(description="open, closed, …")] = None,
    priority: Priority | None = None,
    source: Annotated[str | None, Query(description="post_call or the tool that opened it")] = None,
    call_id: str | None = None,
    customer_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TicketPage:
    """Tickets, newest first, filtered and paginated."""
    where = _Where()
    where.add("status = ?", status)
    where.add("priority = ?", priority)
    where.add("source = ?", source)
    where.add("call_id = ?", call_id)
    where.add("customer_id = ?", customer_id)
    return await _page(
        deps.db,
        TicketPage,
        select=f"SELECT {TICKET_COLUMNS} FROM tickets",
        where=where,
        order="created_at DESC, ticket_id",
        limit=limit,
        offset=offset,
    )


@router.get("/dead-letters", response_model=DeadLetterPage, summary="List dead letters")
async def list_dead_letters(
    deps: Deps,
    consumer: Annotated[
        str | None, Query(description="the durable consumer, e.g. post_call_email")
    ] = None,
    call_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeadLetterPage:
    """Messages the post-call consumers gave up on, newest first."""
    where = _Where()
    where.add("consumer = ?", consumer)
    where.add("call_id = ?", call_id)
    return await _page(
        deps.db,
        DeadLetterPage,
        select=f"SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters",
        where=where,
        order="id DESC",
        limit=limit,
        offset=offset,
    )


class UnsubscribeRequest(BaseModel):
    """An address that asked for no more follow-up email."""

    email: str = Field(
        min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", examples=["ada@example.com"]
    )
    source: str = Field("api", max_length=50, description="where the request came from")


class Unsubscribe(BaseModel):
    """A recorded unsubscribe; the post-call email step sends nothing to this address."""

    email: str
    source: str | None
    unsubscribed_at: datetime


@router.post(
    "/email-unsubscribes",
    response_model=Unsubscribe,
    status_code=201,
    summary="Stop follow-up email to an address",
)
async def unsubscribe(request: UnsubscribeRequest, deps: Deps) -> Unsubscribe:
    """Record that an address wants no follow-up email (idempotent: the first record is kept)."""
    row = await post_call.record_unsubscribe(deps.db, request.email.strip().lower(), request.source)
    return Unsubscribe(**dict(row))
