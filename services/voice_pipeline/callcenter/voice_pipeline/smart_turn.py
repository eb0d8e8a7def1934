"""Smart Turn v3 with one ONNX session and one inference thread for every call of the process.

pipecat's ``LocalSmartTurnAnalyzerV3`` loads the model (~8 MB, its own ONNX session) per
instance and ``BaseSmartTurn`` runs it on a thread of its own per instance. A call needs its own
analyzer (audio buffer, speech state), not its own model or thread. pipecat has no hook to share
a session, so :class:`SharedSmartTurn` subclasses ``BaseSmartTurn`` through the two methods it
leaves to subclasses (``_predict_endpoint``, the model call, and ``_model_executor``, where it
runs): the prediction is delegated to one process-wide ``LocalSmartTurnAnalyzerV3`` and runs on
one process-wide thread, so concurrent calls queue instead of competing for the cores.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3


@cache
def _model() -> LocalSmartTurnAnalyzerV3:
    """The process's one loaded model (single-threaded ONNX session: ``cpu_count=1``)."""
    return LocalSmartTurnAnalyzerV3(cpu_count=1)


@cache
def _worker() -> ThreadPoolExecutor:
    """The process's one Smart Turn inference thread."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


def load_shared_model() -> None:
    """Load the model now (at service start) rather than on the first call."""
    _model()


class SharedSmartTurn(BaseSmartTurn):
    """A per-call Smart Turn analyzer on the process's shared model and worker thread."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shared = _model()

    @property
    def _model_executor(self) -> ThreadPoolExecutor:  # type: ignore[override]
        """The shared inference thread (``BaseSmartTurn`` would start one per analyzer)."""
        return _worker()

    def _predict_endpoint(self, audio_array: np.ndarray) -> dict[str, Any]:
        """Run the shared model (stateless per call: the audio is the whole input)."""
        return self._shared._predict_endpoint(audio_array)
