"""Agent accounts: named people with a token each, created by the admin.

A request proves an agent with ``Authorization: Bearer <agent token>`` or the ``cc_agent`` cookie
set by the inbox login form. The cookie holds the agent id, an expiry and an HMAC of both keyed by
the agent's token hash (never the token), so any replica can check it against the ``agents`` table
and a new token (or a disabled account) invalidates old cookies. The admin (the supervisor) is an
agent too, named ``inbox.supervisor_name``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import asyncpg
from fastapi import HTTPException, Request, Response
from starlette.requests import HTTPConnection

from callcenter.gateway.auth import is_admin
from callcenter.gateway.deps import GatewayDeps

COOKIE_NAME = "cc_agent"
COOKIE_TTL_S = 12 * 3600
SUPERVISOR_ID = "supervisor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """Who is acting in the inbox."""

    agent_id: str
    name: str
    supervisor: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAgent:
    """An account just created: the token is shown this once and never stored."""

    agent: Agent
    token: str


class AgentNameTaken(ValueError):
    """Another agent already has that name."""


def token_hash(token: str) -> str:
    """What is stored instead of the token (tokens are 256-bit random, so a plain hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_agent(db: asyncpg.Pool, *, name: str) -> NewAgent:
    """Create a named agent with a fresh token.

    Raises:
        AgentNameTaken: the name is in use.

    """
    token = "agt_" + secrets.token_urlsafe(32)
    agent_id = "AG" + uuid.uuid4().hex[:16]
    try:
        await db.execute(
            "INSERT INTO agents (agent_id, name, token_hash) VALUES ($1, $2, $3)",
            agent_id,
            name,
            token_hash(token),
        )
    except asyncpg.UniqueViolationError as exc:
        raise AgentNameTaken(f"An agent named {name!r} already exists.") from exc
    return NewAgent(agent=Agent(agent_id=agent_id, name=name), token=token)


async def list_agents(db: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every active agent, by name."""
    return await db.fetch(
        "SELECT agent_id, name, created_at FROM agents WHERE disabled_at IS NULL ORDER BY name"
    )


async def agent_for_token(db: asyncpg.Pool, token: str) -> Agent | None:
    """The active agent holding ``token``."""
    if not token:
        return None
    row = await db.fetchrow(
        "SELECT agent_id, name FROM agents WHERE token_hash = $1 AND disabled_at IS NULL",
        token_hash(token),
    )
    return Agent(agent_id=row["agent_id"], name=row["name"]) if row else None


def _signature(key: str, agent_id: str, expires: int) -> str:
    return hmac.new(key.encode(), f"agent:{agent_id}:{expires}".encode(), "sha256").hexdigest()


async def _agent_for_cookie(db: asyncpg.Pool, value: str) -> Agent | None:
    agent_id, _, rest = value.partition(".")
    expires_text, _, signature = rest.partition(".")
    if not agent_id or not expires_text.isdigit() or int(expires_text) < time.time():
        return None
    row = await db.fetchrow(
        "SELECT agent_id, name, token_hash FROM agents WHERE agent_id = $1 AND disabled_at IS NULL",
        agent_id,
    )
    if row is None:
        return None
    expected = _signature(row["token_hash"], agent_id, int(expires_text))
    if not hmac.compare_digest(expected, signature):
        return None
    return Agent(agent_id=row["agent_id"], name=row["name"])


def supervisor(deps: GatewayDeps) -> Agent:
    """The admin acting in the inbox."""
    return Agent(agent_id=SUPERVISOR_ID, name=deps.config.inbox.supervisor_name, supervisor=True)


async def current_agent(conn: HTTPConnection) -> Agent | None:
    """The agent (or supervisor) making this request, if any."""
    deps: GatewayDeps = conn.app.state.deps
    if is_admin(conn):
        return supervisor(deps)
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return await agent_for_token(deps.db, credentials.strip())
    cookie = conn.cookies.get(COOKIE_NAME)
    return await _agent_for_cookie(deps.db, cookie) if cookie else None


async def require_agent(request: Request) -> Agent:
    """FastAPI dependency: the acting agent, or 401."""
    agent = await current_agent(request)
    if agent is None:
        raise HTTPException(
            status_code=401,
            detail="An agent token (or the admin token) is required.",
            headers={"WWW-Authenticate": 'Bearer realm="callcenter-inbox"'},
        )
    return agent


async def set_agent_cookie(request: Request, response: Response, agent: Agent) -> None:
    """Log the browser in as ``agent`` (call only after :func:`agent_for_token` found it)."""
    deps: GatewayDeps = request.app.state.deps
    stored = await deps.db.fetchval(
        "SELECT token_hash FROM agents WHERE agent_id = $1", agent.agent_id
    )
    expires = int(time.time() + COOKIE_TTL_S)
    response.set_cookie(
        COOKIE_NAME,
        f"{agent.agent_id}.{expires}.{_signature(stored, agent.agent_id, expires)}",
        max_age=COOKIE_TTL_S,
        httponly=True,
        samesite="lax",
        secure=deps.config.gateway.public_base_url.startswith("https://"),
        path="/",
    )
