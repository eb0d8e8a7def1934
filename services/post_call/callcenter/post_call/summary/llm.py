"""The LLM summariser: structured output, models tried in the configured order.

Each model is reached the way ``llm.models[].client`` says (as in the conversation service): an
OpenAI-compatible one with one plain ``POST /chat/completions`` over a pooled aiohttp session,
any other vendor through litellm, which is imported only when a configured model needs it.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import LLMSettings
from callcenter.common.logging import get_logger
from callcenter.common.openai_endpoint import client_for
from callcenter.post_call.summary.base import CallSummary, Summarizer, TranscriptTurn
from callcenter.post_call.summary.models import (
    LiteLLMSummaryModel,
    OpenAISummaryModel,
    SummaryModel,
)
from callcenter.post_call.summary.offline import OfflineSummarizer

log = get_logger(__name__)

SYSTEM_PROMPT = (
    "You summarise customer-service conversations of {company} for the CRM. Answer with JSON only, "
    "matching the schema. summary: plain sentences for a colleague: the customer's problem in "
    "plain words (what is wrong, e.g. 'the sweater arrived torn', not a category), what was done "
    "(the FINAL outcome of each action: a later success overrides an earlier failure of the same "
    "action; tool results are the truth, not what the assistant claimed), and what remains open. "
    "sentiment (positive, neutral or negative), satisfaction (1 = very unhappy to 5 = delighted), "
    "resolved (true ONLY if the customer's request was actually met; false when the assistant "
    "could not find or do what was asked, or the customer wanted a person), topics (short "
    "labels), follow_up_needed, follow_up: a short message written TO the customer: what we did "
    "for them and what happens next, in plain friendly words; never internal notes, tool names, "
    "failures they need not act on, or the summary itself (null when there is nothing to say). "
    "Never include card numbers or codes."
)


def render_transcript(turns: list[TranscriptTurn]) -> str:
    """The conversation as plain lines, tool calls noted."""
    lines: list[str] = []
    for turn in turns:
        if turn.user_text:
            lines.append(f"Customer: {turn.user_text}")
        for call in turn.tool_calls:
            status = "ok" if call.get("success") else f"failed ({call.get('error')})"
            result = json.dumps(call.get("result"), default=str)[:400]
            lines.append(f"[tool {call.get('name')} {status}: {result}]")
        if turn.assistant_text:
            suffix = " (interrupted)" if turn.interrupted else ""
            lines.append(f"Assistant{suffix}: {turn.assistant_text}")
    return "\n".join(lines) or "(no turns)"


#: Signs that a follow-up meant for the customer is really an internal note.
_INTERNAL = re.compile(
    r"(?i)\bthe customer\b|\bcustomer (contacted|called|wrote)\b|\bfailed actions?\b|"
    r"\btool\b|\bnot resolved\b|\bsentiment\b|\bsatisfaction\b"
)


async def customer_facing(
    summary: CallSummary, *, channel: str, reason: str, turns: list[TranscriptTurn]
) -> CallSummary:
    """``summary`` whose ``follow_up`` (sent to the customer) is never an internal note.

    A model that writes "The customer contacted us… Failed actions…" as the follow-up gets the
    offline summariser's customer-facing text (what we did, what happens next) instead.
    """
    if not summary.follow_up or not _INTERNAL.search(summary.follow_up):
        return summary
    offline, _ = await OfflineSummarizer().summarize(channel=channel, reason=reason, turns=turns)
    log.warning("the model's follow-up read as an internal note; using the offline one")
    return summary.model_copy(update={"follow_up": offline.follow_up})


def _json_text(content: str) -> str:
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("{") :] if "{" in text else text
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start >= 0 and end > start else text


class LLMSummarizer(Summarizer):
    """Asks each configured model in turn; the fallback (offline) answers when all fail."""

    def __init__(
        self, *, settings: LLMSettings, company: str, fallback: Summarizer | None = None
    ) -> None:
        self._settings = settings
        self._fallback = fallback
        self._system_prompt = SYSTEM_PROMPT.format(company=company)
        self._models: list[SummaryModel] = [
            OpenAISummaryModel(entry=entry, settings=settings)
            if client_for(entry) == "openai"
            else LiteLLMSummaryModel(entry=entry, settings=settings)
            for entry in settings.models
        ]

    def warm_up(self) -> None:
        """Import litellm now if a model needs it: seconds of CPU that would block call one."""
        for model in self._models:
            model.warm_up()

    async def close(self) -> None:
        """Close the models' pooled connections."""
        for model in self._models:
            await model.close()

    async def summarize(
        self, *, channel: str, reason: str, turns: list[TranscriptTurn]
    ) -> tuple[CallSummary, str]:
        """Summarise with the first model that returns valid structured output.

        Raises:
            RetryLater: every model failed and no fallback is configured.

        """
        messages = [
            {"role": "system", "content": self._system_prompt},
            {
                "role": "user",
                "content": f"Channel: {channel}. Ended: {reason}.\n\n{render_transcript(turns)}",
            },
        ]
        errors: list[str] = []
        for model in self._models:
            try:
                content = await model.complete(messages)
                summary = CallSummary.model_validate_json(_json_text(content))
                checked = await customer_facing(
                    summary, channel=channel, reason=reason, turns=turns
                )
                return checked, model.name
            except ValidationError as exc:
                errors.append(f"{model.name}: invalid summary ({exc.error_count()} errors)")
            except Exception as exc:
                errors.append(f"{model.name}: {type(exc).__name__}: {exc}")
            log.warning("summary model failed", model=model.name, error=errors[-1][:300])
        if self._fallback is not None:
            summary, engine = await self._fallback.summarize(
                channel=channel, reason=reason, turns=turns
            )
            return summary, engine
        raise RetryLater("every LLM failed: " + "; ".join(errors)[:500])
