"""Silero VAD on the event loop instead of a thread per call, skipping windows clearly silent.

pipecat's ``VADAnalyzer.analyze_audio`` hands every 20 ms chunk to a thread of its own per call
(``run_in_executor``). The model run is ~0.1 ms for 32 ms of 8 kHz audio, so the hand-off (two
context switches, a future, a thread per call) costs more than the work. pipecat has no switch
for it; :class:`InlineSileroVAD` overrides the public ``analyze_audio`` to run the same analysis
(``_run_analyzer``, the step pipecat runs in its thread) inline.

Even inline, the ONNX run is most of the VAD's cost, and on a phone call most windows are line
silence (the caller listening). pipecat counts a window as speech only when the model's confidence
*and* the smoothed loudness of the last 400 ms reach their thresholds (``VADParams.confidence``,
``min_volume``). :class:`SilenceGate` proves the loudness side false from the window's energy
alone, so the model is not run for it (its confidence could not change the outcome):

* loudness (ITU-R BS.1770, what pipecat measures) is at most the signal's mean-square level plus
  the K-weighting's largest gain (+4 dB) minus 0.691 dB; pipecat maps -110..-10 LUFS to 0..1, so
  ``min_volume`` is ``-110 + 100 * min_volume`` LUFS;
* a window is *quiet* when its RMS is below that, minus the 4 dB gain and a 6 dB margin;
* pipecat smooths the loudness (``v' = v + 0.2 (x - v)``) over a 400 ms window (13 windows of 32
  ms), so only after :data:`QUIET_WINDOWS` quiet windows in a row (13 to fill the loudness window,
  10 more for the smoothing to fall from 1.0 below the threshold) is the outcome certain.

The first window that is not quiet runs the model again at once. A gated window counts as a
confidence of 0 for pipecat's periodic model reset (as the model scores line silence).

Every call's analyzer runs the process's one ONNX session (loaded once, ~5 ms CPU and 2 MB per
call otherwise); the model's recurrent state and audio context stay per call
(``SileroOnnxModel`` keeps them apart from the session, and a shallow copy gets its own).
"""

from __future__ import annotations

import copy
import math
from functools import cache

import numpy as np
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

#: The K-weighting filter's largest gain (its high-frequency shelf), dB.
K_WEIGHT_MAX_GAIN_DB = 4.0
#: Extra distance below the loudness threshold before a window counts as quiet, dB.
MARGIN_DB = 6.0
#: Quiet 32 ms windows in a row after which pipecat's smoothed loudness is surely below threshold.
QUIET_WINDOWS = 24


class SilenceGate:
    """Says, per VAD window, whether pipecat's loudness check is sure to fail (skip the model)."""

    def __init__(self, *, params: VADParams) -> None:
        threshold_lufs = -110.0 + 100.0 * params.min_volume
        quiet_dbfs = threshold_lufs + 0.691 - K_WEIGHT_MAX_GAIN_DB - MARGIN_DB
        #: mean square of float samples (full scale 1.0) below which a window is quiet
        self._quiet_mean_square = 10.0 ** (quiet_dbfs / 10.0)
        self._quiet_run = 0
        #: windows the model was not run for
        self.skipped = 0

    def silent(self, window: bytes) -> bool:
        """Note one VAD window (16-bit PCM); True when its model run can be skipped."""
        samples = np.frombuffer(window, dtype=np.int16).astype(np.float32)
        mean_square = float(np.dot(samples, samples)) / (max(1, len(samples)) * 32768.0**2)
        if mean_square >= self._quiet_mean_square or math.isnan(mean_square):
            self._quiet_run = 0
            return False
        self._quiet_run += 1
        if self._quiet_run < QUIET_WINDOWS:
            return False
        self.skipped += 1
        return True


@cache
def _shared_model() -> SileroOnnxModel:
    """The process's Silero model (its ONNX session), loaded the way pipecat loads it."""
    return SileroVADAnalyzer()._model


def load_vad_model() -> None:
    """Load the model now (at service start) rather than on the first call."""
    _shared_model()


class InlineSileroVAD(SileroVADAnalyzer):
    """Silero VAD analysed inline on the event loop, optionally behind a :class:`SilenceGate`."""

    def __init__(self, *, energy_gate: bool = True, params: VADParams | None = None) -> None:
        # SileroVADAnalyzer.__init__ would load a model of its own: set what it sets, with the
        # shared session and this call's own state.
        VADAnalyzer.__init__(self, params=params)
        self._model = copy.copy(_shared_model())
        self._model.reset_states()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self.gate = SilenceGate(params=self.params) if energy_gate else None

    def set_params(self, params: VADParams) -> None:
        """Apply new VAD params (the gate's threshold follows ``min_volume``)."""
        super().set_params(params)
        if getattr(self, "gate", None) is not None:
            self.gate = SilenceGate(params=params)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Analyse ``buffer`` now, on the loop; the VAD state after it."""
        return self._run_analyzer(buffer)

    def voice_confidence(self, buffer: bytes) -> float:
        """The model's speech confidence for one window; 0 without a run when surely silent."""
        if self.gate is not None and self.gate.silent(buffer):
            self._maybe_reset_model(0.0)
            return 0.0
        return super().voice_confidence(buffer)
