"""transfer_to_agent: hand the conversation to a person (the voice pipeline or gateway acts on it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from callcenter.tools.registry import SkillContext, ToolArguments, ToolError, skill


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
    """Say that the call should move to a person; the edge does the transfer.

    Raises:
        ToolError: ``transfer_unavailable`` on a call from the browser, which no agent can join
            (no phone line to redirect): the assistant must not promise a colleague there.

    """
    if ctx.call.channel == "web_voice":
        raise ToolError(
            "transfer_unavailable",
            "A colleague can't join a call from the browser. Hang up and type 'agent' in the "
            "chat window to reach a person there, or I can arrange a call back.",
        )
    return {"transfer": True, "reason": args.reason, "queue": args.queue}


TOOL_SCHEMA = transfer_to_agent.schema
