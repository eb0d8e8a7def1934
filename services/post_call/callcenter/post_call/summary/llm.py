"""The LLM summariser: litellm with structured output, models tried in the configured order."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from pydantic import ValidationError

from callcenter.common.bus.consumer import RetryLater
from callcenter.common.config.sections import LLMModelSettings, LLMSettings
from callcenter.common.logging import get_logger
from callcenter.post_call.summary.base import CallSummary, Summarizer, TranscriptTurn
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


#: The structured-output request, built once (the schema is the same for every call).
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "call_summary", "schema": CallSummary.model_json_schema()},
}


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


def _litellm() -> Any:
    """litellm, imported on first use (it is slow to import), without network look-ups."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _api_key(model: LLMModelSettings) -> str | None:
    if model.api_key is not None:
        return model.api_key.get_secret_value()
    if model.api_key_env:
        return os.environ.get(model.api_key_env)
    return None


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
        self._company = company
        self._fallback = fallback
        self._system_prompt = SYSTEM_PROMPT.format(company=company)

    def warm_up(self) -> None:
        """Import litellm now: seconds of CPU that would otherwise block the loop on call one."""
        _litellm()

    async def summarize(
        self, *, channel: str, reason: str, turns: list[TranscriptTurn]
    ) -> tuple[CallSummary, str]:
        """Summarise with the first model that returns valid structured output.

        Raises:
            RetryLater: every model failed and no fallback is configured.

        """
        litellm = _litellm()
        messages = [
            {"role": "system", "content": self._system_prompt},
            {
                "role": "user",
                "content": f"Channel: {channel}. Ended: {reason}.\n\n{render_transcript(turns)}",
            },
        ]
        errors: list[str] = []
        for model in self._settings.models:
            try:
                response = await litellm.acompletion(
                    model=model.model,
                    messages=messages,
                    api_key=_api_key(model),
                    api_base=model.api_base,
                    timeout=model.timeout_s or self._settings.timeout_s,
                    temperature=0,
                    num_retries=self._settings.retries,
                    response_format=RESPONSE_FORMAT,
                )
                content = response.choices[0].message.content or ""
                summary = CallSummary.model_validate_json(_json_text(content))
                checked = await customer_facing(
                    summary, channel=channel, reason=reason, turns=turns
                )
                return checked, model.model
            except ValidationError as exc:
                errors.append(f"{model.model}: invalid summary ({exc.error_count()} errors)")
            except Exception as exc:
                errors.append(f"{model.model}: {type(exc).__name__}: {exc}")
            log.warning("summary model failed", model=model.model, error=errors[-1][:300])
        if self._fallback is not None:
            summary, engine = await self._fallback.summarize(
                channel=channel, reason=reason, turns=turns
            )
            return summary, engine
        raise RetryLater("every LLM failed: " + "; ".join(errors)[:500])
