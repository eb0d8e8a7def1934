"""Silero VAD on the event loop instead of a thread per call.

pipecat's ``VADAnalyzer.analyze_audio`` hands every 20 ms chunk to a thread of its own per call
(``run_in_executor``). The model run is ~0.1 ms for 32 ms of 8 kHz audio, so the hand-off (two
context switches, a future, a thread per call) costs more than the work. pipecat has no switch
for it; :class:`InlineSileroVAD` overrides the public ``analyze_audio`` to run the same analysis
(``_run_analyzer``, the step pipecat runs in its thread) inline.
"""

from __future__ import annotations

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADState


class InlineSileroVAD(SileroVADAnalyzer):
    """Silero VAD analysed inline on the event loop."""

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Analyse ``buffer`` now, on the loop; the VAD state after it."""
        return self._run_analyzer(buffer)
