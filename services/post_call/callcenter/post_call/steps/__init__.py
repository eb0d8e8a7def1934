"""The post-call steps, by name (``post_call.steps`` selects which ones a process runs)."""

from callcenter.post_call.steps.base import Outcome, Step, StepContext
from callcenter.post_call.steps.crm import CrmStep
from callcenter.post_call.steps.email import EmailStep
from callcenter.post_call.steps.metrics import MetricsStep
from callcenter.post_call.steps.notify import NotifyStep
from callcenter.post_call.steps.summary import SummaryStep
from callcenter.post_call.steps.ticket import TicketStep
from callcenter.post_call.steps.transcript import TranscriptStep
from callcenter.post_call.steps.verified import VerifiedStep
from callcenter.post_call.steps.voice_timings import VoiceTimingsStep

STEPS: dict[str, type[Step]] = {
    step.name: step
    for step in (
        TranscriptStep,
        SummaryStep,
        CrmStep,
        EmailStep,
        TicketStep,
        MetricsStep,
        NotifyStep,
        VerifiedStep,
        VoiceTimingsStep,
    )
}


def build_steps(names: list[str], *, ctx: StepContext) -> list[Step]:
    """The steps named in ``names``, in the order given.

    Raises:
        ValueError: a name is not a known step.

    """
    unknown = [name for name in names if name not in STEPS]
    if unknown:
        raise ValueError(
            f"unknown post_call.steps {unknown}; choose from {sorted(STEPS)} "
            "(e.g. CALLCENTER_POST_CALL__STEPS='[\"email\"]')"
        )
    return [STEPS[name](ctx=ctx) for name in dict.fromkeys(names)]


__all__ = ["STEPS", "Outcome", "Step", "StepContext", "build_steps"]
