"""The agent's part of a conversation (the agent inbox), as turns the summarisers read.

While a person owns a conversation the gateway keeps what the customer and the agent wrote in its
``handoff_messages`` table (PII redacted there); the summary reads it after the bot's turns, so
"Dana (agent): …" lines are summarised with the rest.
"""

from __future__ import annotations

import asyncpg

from callcenter.common.queries.gateway import handoff_messages
from callcenter.post_call.summary.base import TranscriptTurn


async def handoff_turns(
    db: asyncpg.Pool, call_id: str, *, first_index: int
) -> list[TranscriptTurn]:
    """The messages exchanged with an agent, one turn each, numbered from ``first_index``."""
    return turns_of(await handoff_messages(db, call_id), first_index=first_index)


def turns_of(rows: list[asyncpg.Record], *, first_index: int) -> list[TranscriptTurn]:
    """Rows of ``handoff_messages`` as turns, numbered from ``first_index``."""
    turns = []
    for offset, row in enumerate(rows):
        if row["sender"] == "customer":
            turns.append(
                TranscriptTurn(
                    turn_index=first_index + offset, user_text=row["text"], assistant_text=""
                )
            )
        elif row["sender"] == "agent":
            turns.append(
                TranscriptTurn(
                    turn_index=first_index + offset,
                    user_text="",
                    assistant_text=f"{row['agent_name']} (agent): {row['text']}",
                )
            )
    return turns
