"""A conversation's transcript for agents: the bot's turns and what was written with a person."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field

from callcenter.common.queries.post_call import conversation_turns


class HandoffLine(BaseModel):
    """One message of the agent's part of a conversation (PII redacted)."""

    at: datetime
    sender: Literal["customer", "agent", "system"]
    agent_name: str | None = None
    text: str


async def handoff_lines(db: asyncpg.Pool, call_id: str) -> list[HandoffLine]:
    """The customer's, the agent's and the inbox's messages of ``call_id``, oldest first."""
    rows = await db.fetch(
        "SELECT created_at AS at, sender, agent_name, text FROM handoff_messages "
        "WHERE call_id = $1 ORDER BY id",
        call_id,
    )
    return [HandoffLine(**dict(row)) for row in rows]


class ToolResult(BaseModel):
    """A tool the assistant used, with its result."""

    name: str
    success: bool
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None


class TranscriptEntry(BaseModel):
    """One line of the conversation, bot turns and the agent's part together."""

    at: datetime
    sender: Literal["customer", "assistant", "agent", "system"]
    agent_name: str | None = None
    text: str
    tools: list[ToolResult] = Field(default_factory=list)


async def conversation_transcript(db: asyncpg.Pool, call_id: str) -> list[TranscriptEntry]:
    """The bot's turns (with tool results) and the agent's part, in time order."""
    entries: list[TranscriptEntry] = []
    turns = await conversation_turns(db, call_id)
    for turn in turns:
        calls = turn["tool_calls"]
        calls = json.loads(calls) if isinstance(calls, str) else calls or []
        entries.append(
            TranscriptEntry(at=turn["occurred_at"], sender="customer", text=turn["user_text"])
        )
        entries.append(
            TranscriptEntry(
                at=turn["occurred_at"],
                sender="assistant",
                text=turn["assistant_text"],
                tools=[ToolResult.model_validate(call) for call in calls],
            )
        )
    entries += [
        TranscriptEntry(at=line.at, sender=line.sender, agent_name=line.agent_name, text=line.text)
        for line in await handoff_lines(db, call_id)
    ]
    entries.sort(key=lambda entry: entry.at)
    return entries
