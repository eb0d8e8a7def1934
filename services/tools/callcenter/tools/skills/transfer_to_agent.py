"""transfer_to_agent: hand the conversation to a person (the voice pipeline or gateway acts on it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from callcenter.tools.registry import SkillContext, ToolArguments, skill


class TransferToAgentArgs(ToolArguments):
    """Why, and to which team."""

    reason: str = Field(
        min_length=3, max_length=300, description="Why a person is needed, in one sentence."
    )
    queue: Literal["general", "orders", "returns", "billing", "technical"] = Field(
        default="general", description="Which team should take it."
    )


@skill(
    name="transfer_to_agent",
    description=(
        "Hand the conversation to a human agent: at once when the customer asks for a person or "
        "agent; when they are angry or insulting (apologise first); when they write in a language "
        "other than English and want help; or when they need something no tool can do. Tell "
        "them you're connecting them. Do not hand off for questions you can answer."
    ),
    arguments=TransferToAgentArgs,
)
async def transfer_to_agent(args: TransferToAgentArgs, ctx: SkillContext) -> dict[str, Any]:
    """Say that the call should move to a person; the edge does the transfer."""
    return {"transfer": True, "reason": args.reason, "queue": args.queue}


TOOL_SCHEMA = transfer_to_agent.schema
