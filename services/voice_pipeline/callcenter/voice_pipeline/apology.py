"""The apology the caller hears when a provider stays down: synthesised once, kept in memory.

It is fetched from ElevenLabs' plain HTTP endpoint (``POST /v1/text-to-speech/{voice}`` with
``output_format=pcm_8000``) when the service starts, and again later if that failed, so a call
whose TTS socket is gone can still say something before it is transferred or ended.
"""

from __future__ import annotations

import httpx

from callcenter.common.config import CallCenterConfig
from callcenter.common.logging import get_logger

log = get_logger(__name__)

SAMPLE_RATE = 8000
DEFAULT_WS_URL = "wss://api.elevenlabs.io"


def http_base_url(ws_url: str | None) -> str:
    """ElevenLabs' HTTP base for the configured WebSocket base URL."""
    url = (ws_url or DEFAULT_WS_URL).rstrip("/")
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    return url


class ApologyCache:
    """16-bit PCM at 8 kHz of the apologies, each fetched once.

    ``voice_pipeline.apology_text`` announces a person; ``apology_end_text`` is said when nobody
    can take the call over, so the caller is never promised a person no code will bring.
    """

    def __init__(self, *, config: CallCenterConfig) -> None:
        self._config = config
        self._audio: dict[str, bytes] = {}

    async def load(self, *, hand_over: bool = True) -> bytes | None:
        """The audio of the apology for a call that is (or is not) handed over; never raises."""
        settings = self._config.voice_pipeline
        text = settings.apology_text if hand_over else settings.apology_end_text
        if text not in self._audio:
            audio = await self._fetch(text)
            if audio is not None:
                self._audio[text] = audio
        return self._audio.get(text)

    async def warm(self) -> None:
        """Fetch both apologies (at start-up: when they are needed a provider may be down)."""
        await self.load(hand_over=True)
        await self.load(hand_over=False)

    async def _fetch(self, text: str) -> bytes | None:
        el = self._config.elevenlabs
        if el.api_key is None:
            return None
        url = f"{http_base_url(el.url)}/v1/text-to-speech/{el.voice_id}"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(
                    url,
                    params={"output_format": f"pcm_{SAMPLE_RATE}"},
                    headers={"xi-api-key": el.api_key.get_secret_value()},
                    json={"text": text, "model_id": el.model},
                )
                response.raise_for_status()
        except Exception as exc:
            log.warning("apology audio not cached yet", error=str(exc))
            return None
        log.info("apology audio cached", bytes=len(response.content))
        return response.content
