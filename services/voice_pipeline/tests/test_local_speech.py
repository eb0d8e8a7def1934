"""The embedded speech providers and the provider switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from callcenter.common.config import CallCenterConfig
from callcenter.voice_pipeline.local.espeak.tts import EspeakTTSService
from callcenter.voice_pipeline.local.pocketsphinx.grammar import to_text
from callcenter.voice_pipeline.local.pocketsphinx.stt import PocketsphinxSTTService
from callcenter.voice_pipeline.simulator import RATE, speech_ulaw, ulaw_to_pcm16
from callcenter.voice_pipeline.speech import (
    SpeechProviderError,
    speech_problems,
    speech_services,
    stt_provider,
    tts_provider,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def _config(config: CallCenterConfig, **voice: object) -> CallCenterConfig:
    cfg = config.model_copy(deep=True)
    cfg.deepgram.api_key = None
    cfg.deepgram.enabled = False
    cfg.elevenlabs.api_key = None
    cfg.elevenlabs.enabled = False
    for key, value in voice.items():
        setattr(cfg.voice_pipeline, key, value)
    return cfg


def test_no_keys_picks_the_embedded_providers(config: CallCenterConfig) -> None:
    cfg = _config(config)
    assert (stt_provider(cfg), tts_provider(cfg)) == ("pocketsphinx", "espeak")
    cfg.deepgram.api_key = SecretStr("dg-key")
    cfg.elevenlabs.api_key = SecretStr("el-key")
    assert (stt_provider(cfg), tts_provider(cfg)) == ("deepgram", "elevenlabs")
    cfg.voice_pipeline.stt_provider = "pocketsphinx"
    cfg.voice_pipeline.tts_provider = "espeak"
    assert (stt_provider(cfg), tts_provider(cfg)) == ("pocketsphinx", "espeak")


@needs_espeak
def test_speech_services_builds_what_the_config_names(config: CallCenterConfig) -> None:
    stt, tts = speech_services(_config(config), sample_rate=8000, tag="CA1")
    assert isinstance(stt, PocketsphinxSTTService)
    assert isinstance(tts, EspeakTTSService)
    cfg = _config(config)
    cfg.deepgram.api_key = SecretStr("dg-key")
    cfg.elevenlabs.api_key = SecretStr("el-key")
    stt, tts = speech_services(cfg, sample_rate=8000, tag="CA1")
    assert type(stt).__name__ == "DeepgramSTTService"
    assert type(tts).__name__ == "ElevenLabsTTSService"


def test_a_model_missing_from_the_cache_is_a_clear_error(
    config: CallCenterConfig, tmp_path: Path
) -> None:
    # a model no package carries (tiny.en and en_US-joe-medium may be installed: see below)
    cfg = _config(
        config, stt_provider="whisper", whisper_model="base.en", speech_cache_dir=str(tmp_path)
    )
    with pytest.raises(SpeechProviderError, match=r"whisper model 'base.en' is not in the cache"):
        speech_services(cfg, sample_rate=8000)
    cfg = _config(
        config, tts_provider="piper", whisper_model="base.en", speech_cache_dir=str(tmp_path)
    )
    with pytest.raises(SpeechProviderError, match=r"piper voice .* is not in the cache"):
        speech_services(cfg, sample_rate=8000)
    cfg.voice_pipeline.stt_provider = "whisper"
    assert len(speech_problems(cfg)) == 2  # said at start-up, before any call


def test_espeak_missing_says_how_to_install_it(
    config: CallCenterConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    assert speech_problems(_config(config)) == [
        "tts_provider espeak needs espeak-ng: apt-get install -y espeak-ng"
    ]
    with pytest.raises(SpeechProviderError, match="apt-get install -y espeak-ng"):
        speech_services(_config(config), sample_rate=8000)


def test_recognised_words_become_what_the_caller_means() -> None:
    assert to_text("where is my order o r d one oh oh one") == "where is my order ORD 1001"
    assert to_text("my order number is one zero zero two") == "my order number is 1002"
    assert to_text("yes") == "yes"


@needs_espeak
@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("Where is my order?", "where is my order"),
        ("where is my order, O R D one oh oh one", "where is my order ORD 1001"),
        ("I want to return it", "i want to return it"),
        ("yes", "yes"),
        ("no", "no"),
    ],
)
def test_pocketsphinx_hears_the_demo_questions_on_a_phone_line(said: str, heard: str) -> None:
    """espeak-ng speaks, the line is 8 kHz μ-law, PocketSphinx recognises it."""
    stt = PocketsphinxSTTService(sample_rate=RATE)
    pcm = ulaw_to_pcm16(speech_ulaw(said))
    assert np.frombuffer(pcm, dtype="<i2").size > RATE // 4  # real audio was spoken
    assert stt.decode(pcm, sample_rate=RATE) == heard
