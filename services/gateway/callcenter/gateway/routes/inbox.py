"""The agent inbox: REST API (``/api/inbox…``, ``/api/agents``) and the page at ``/dashboard/inbox``.

The same operations serve our page and any team's own agent desktop: list the queue, read one
conversation, take it (atomic: of two agents racing, one gets 200 and the other 409), send a
message, hand back to the bot, close. Agents authenticate with their own token (``Authorization:
Bearer``) or the inbox login's cookie; the admin token acts as the supervisor. Agent accounts are
created by the admin (``POST /api/agents``), and the token is shown once.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from callcenter.common.events import Channel
from callcenter.common.handoff import Owner
from callcenter.common.logging import get_logger
from callcenter.common.queries.post_call import LAST_VERIFIED_CUSTOMER
from callcenter.gateway.auth import require_admin
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.inbox import agents, state
from callcenter.gateway.inbox.agents import Agent, AgentNameTaken, require_agent
from callcenter.gateway.inbox.transcript import TranscriptEntry, conversation_transcript
from callcenter.gateway.live import sse_stream

log = get_logger(__name__)

PAGES = Path(__file__).resolve().parent.parent / "static" / "dashboard"
Deps = Annotated[GatewayDeps, Depends(request_deps)]
Acting = Annotated[Agent, Depends(require_agent)]

router = APIRouter()
api = APIRouter(prefix="/api/inbox", tags=["inbox"])
admin = APIRouter(prefix="/api/agents", tags=["inbox"], dependencies=[Depends(require_admin)])


# --- models ---------------------------------------------------------------------------------


class InboxItem(BaseModel):
    """A conversation that left the bot: waiting for an agent, or with one."""

    call_id: str
    channel: Channel
    state: Owner
    reason: str
    trigger: str = Field(description="tool, supervisor or voice_transfer")
    summary: str = Field(description="the conversation so far, for the agent (the screen pop)")
    customer_id: str | None = Field(description="the verified customer, if any")
    customer_number: str | None
    requested_at: datetime
    waiting_s: float = Field(description="how long the customer has waited (until taken)")
    agent_name: str | None
    taken_at: datetime | None
    ticket_id: str | None = Field(description="opened when no agent came in time")


class InboxDetail(BaseModel):
    """One conversation in full, for the agent who takes it."""

    item: InboxItem
    transcript: list[TranscriptEntry]


class InboxPage(BaseModel):
    """The queue (oldest first) and what the acting agent owns."""

    agent_name: str
    items: list[InboxItem]


class MessageIn(BaseModel):
    """An agent's message to the customer."""

    text: str = Field(min_length=1)


class MessageResult(BaseModel):
    """Whether the customer's widget (or phone) got it; it is stored either way."""

    delivered: bool


class AgentIn(BaseModel):
    """A new agent account."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f<>]+$")

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an agent needs a name")
        return value.strip()


class AgentOut(BaseModel):
    """An agent account."""

    agent_id: str
    name: str
    created_at: datetime | None = None


class AgentCreated(AgentOut):
    """A new account with its token, shown this once."""

    token: str


# --- queries --------------------------------------------------------------------------------

ITEM_SELECT = f"""
SELECT h.call_id, h.channel, h.state, h.reason, h.trigger, h.summary, h.customer_number,
       h.requested_at, h.agent_name, h.taken_at, h.ticket_id,
       COALESCE(c.customer_id, {LAST_VERIFIED_CUSTOMER}) AS customer_id
FROM handoffs h LEFT JOIN calls c ON c.call_id = h.call_id
"""  # a fixed fragment from post_call's query module, no input


async def _summary(deps: GatewayDeps, call_id: str, stored: str) -> str:
    """The stored summary, or the note the voice pipeline left when it transferred the call."""
    if stored:
        return stored
    raw = await deps.redis.get(deps.key(f"call:{call_id}:handoff"))
    try:
        return str(json.loads(raw).get("summary") or "") if raw else ""
    except (ValueError, AttributeError):
        return ""


async def _item(deps: GatewayDeps, row: Any) -> InboxItem:
    end = row["taken_at"] or datetime.now(UTC)
    return InboxItem(
        **{k: row[k] for k in row.keys() if k != "summary"},
        summary=await _summary(deps, row["call_id"], row["summary"]),
        waiting_s=max(0.0, (end - row["requested_at"]).total_seconds()),
    )


async def _load_item(deps: GatewayDeps, call_id: str) -> InboxItem:
    row = await deps.db.fetchrow(ITEM_SELECT + " WHERE h.call_id = $1", call_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"No conversation {call_id} in the inbox.")
    return await _item(deps, row)


def _conflict(exc: state.NotAllowed) -> HTTPException:
    return HTTPException(status_code=409, detail=str(exc))


# --- the REST API ---------------------------------------------------------------------------


@api.get("", response_model=InboxPage, summary="The queue and my conversations")
async def list_inbox(deps: Deps, agent: Acting) -> InboxPage:
    """Conversations waiting for an agent (oldest first), then those agents hold."""
    rows = await deps.db.fetch(
        ITEM_SELECT + " WHERE h.state IN ('waiting_for_agent', 'agent') "
        "ORDER BY (h.state = 'agent'), h.requested_at LIMIT 200"
    )
    return InboxPage(agent_name=agent.name, items=[await _item(deps, row) for row in rows])


@api.get("/events", include_in_schema=False)
async def inbox_events(request: Request, agent: Acting) -> StreamingResponse:
    """Server-Sent Events: ``inbox.updates`` whenever a conversation changes (on any replica)."""
    return StreamingResponse(
        sse_stream(request.app.state.inbox_hub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@api.get("/{call_id}", response_model=InboxDetail, summary="One conversation in full")
async def get_conversation(call_id: str, deps: Deps, agent: Acting) -> InboxDetail:
    """The hand-off and the whole transcript: the bot's turns with tool results, and the agent's part."""
    return InboxDetail(
        item=await _load_item(deps, call_id),
        transcript=await conversation_transcript(deps.db, call_id),
    )


@api.post(
    "/{call_id}/take",
    response_model=InboxItem,
    summary="Take a conversation",
    responses={409: {"description": "another agent took it first, or it is not waiting"}},
)
async def take(call_id: str, deps: Deps, agent: Acting) -> InboxItem:
    """Become the conversation's agent; the bot stops answering and the customer is told your name."""
    try:
        await state.take(deps, call_id=call_id, agent=agent)
    except state.NotAllowed as exc:
        raise _conflict(exc) from exc
    return await _load_item(deps, call_id)


@api.post(
    "/{call_id}/messages",
    response_model=MessageResult,
    summary="Send the customer a message",
    responses={409: {"description": "you do not own this conversation"}},
)
async def send_message(call_id: str, body: MessageIn, deps: Deps, agent: Acting) -> MessageResult:
    """Reach the customer's chat widget or phone (SMS from the business number), signed with your name."""
    text = body.text.strip()
    limit = deps.config.inbox.max_message_chars
    if not text:
        raise HTTPException(status_code=400, detail="Type a message first.")
    if len(text) > limit:
        raise HTTPException(status_code=400, detail=f"Messages are limited to {limit} characters.")
    try:
        delivered = await state.agent_message(deps, call_id=call_id, agent=agent, text=text)
    except state.NotAllowed as exc:
        raise _conflict(exc) from exc
    return MessageResult(delivered=delivered)


async def _leave(call_id: str, deps: GatewayDeps, agent: Agent, outcome: str) -> InboxItem:
    try:
        await state.leave(deps, call_id=call_id, agent=agent, outcome=outcome)
    except state.NotAllowed as exc:
        raise _conflict(exc) from exc
    return await _load_item(deps, call_id)


@api.post("/{call_id}/hand-back", response_model=InboxItem, summary="Hand back to the bot")
async def hand_back(call_id: str, deps: Deps, agent: Acting) -> InboxItem:
    """The bot answers again; the customer is told you left."""
    return await _leave(call_id, deps, agent, "handed_back")


@api.post("/{call_id}/close", response_model=InboxItem, summary="Close the conversation")
async def close(call_id: str, deps: Deps, agent: Acting) -> InboxItem:
    """End the conversation; the customer is told."""
    return await _leave(call_id, deps, agent, "closed")


@admin.post("", response_model=AgentCreated, status_code=201, summary="Create an agent account")
async def create_agent(body: AgentIn, deps: Deps) -> AgentCreated:
    """A named agent with a new token (shown only in this response)."""
    try:
        created = await agents.create_agent(deps.db, name=body.name)
    except AgentNameTaken as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    log.info("agent created", agent_id=created.agent.agent_id)
    return AgentCreated(
        agent_id=created.agent.agent_id, name=created.agent.name, token=created.token
    )


@admin.get("", response_model=list[AgentOut], summary="List agent accounts")
async def list_agents(deps: Deps) -> list[AgentOut]:
    """Every active agent."""
    return [AgentOut(**dict(row)) for row in await agents.list_agents(deps.db)]


# --- the page -------------------------------------------------------------------------------


def _login_page(*, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    notice = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        (PAGES / "login.html")  # the dashboard's form, for an agent token
        .read_text()
        .replace("{{notice}}", notice)
        .replace("Supervisor dashboard", "Agent inbox")
        .replace('action="/dashboard/login"', 'action="/dashboard/inbox/login"')
        .replace(">Admin token<", ">Agent token<")
        .replace("{{next}}", "/dashboard/inbox")
    )
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/inbox", include_in_schema=False)
async def inbox_page(request: Request) -> Response:
    """The agent inbox (agents and the supervisor)."""
    if await agents.current_agent(request) is None:
        return RedirectResponse("/dashboard/inbox/login", status_code=303)
    return HTMLResponse((PAGES / "inbox.html").read_text(), headers={"Cache-Control": "no-store"})


@router.get("/dashboard/inbox/login", include_in_schema=False)
async def inbox_login_form() -> Response:
    """The agents' login form."""
    return _login_page()


@router.post("/dashboard/inbox/login", include_in_schema=False)
async def inbox_login(request: Request, token: str = Form("")) -> Response:
    """Check an agent token; on success set the agent cookie."""
    deps: GatewayDeps = request.app.state.deps
    client = request.client.host if request.client else "unknown"
    failures_key = deps.key(f"inbox:login_failures:{client}")
    if int(await deps.redis.get(failures_key) or 0) >= 10:
        return _login_page(
            error="Too many wrong tokens; try again in a few minutes.", status_code=429
        )
    agent = await agents.agent_for_token(deps.db, token.strip())
    if agent is None:
        if await deps.redis.incr(failures_key) == 1:
            await deps.redis.expire(failures_key, 300)
        return _login_page(error="That agent token is not right.", status_code=401)
    response = RedirectResponse("/dashboard/inbox", status_code=303)
    await agents.set_agent_cookie(request, response, agent)
    return response


@router.post("/dashboard/inbox/logout", include_in_schema=False)
async def inbox_logout() -> Response:
    """Forget the agent cookie."""
    response = RedirectResponse("/dashboard/inbox/login", status_code=303)
    response.delete_cookie(agents.COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response


router.include_router(api)
router.include_router(admin)
