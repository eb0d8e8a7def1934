"""CPU per call-second of the embedded speech providers (PocketSphinx STT, espeak-ng TTS).

``python -m bench.local_speech [--rounds 3]``

Each round, espeak-ng speaks the demo phrases as 8 kHz phone audio and PocketSphinx
(``PocketsphinxSTTService.decode``, the code a call runs) recognises each one. The bench prints,
per provider, CPU time (user + system: this process for PocketSphinx, the espeak-ng child
processes for espeak) divided by the seconds of audio handled, and the calls per core that allows
if a caller speaks (STT) or the bot speaks (TTS) for the whole call. CPU time, not wall time, so
the figure holds on a shared machine. Only the providers: the rest of a call (VAD, Smart Turn,
transport, other services) is in ``bench.voice_calls``.
"""

from __future__ import annotations

import argparse
import resource
import time

from callcenter.voice_pipeline.local.pocketsphinx.stt import PocketsphinxSTTService
from callcenter.voice_pipeline.simulator import RATE, speech_ulaw, ulaw_to_pcm16

PHRASES = (
    "where is my order, O R D one oh oh one",
    "I want to return it",
    "how long does shipping take for my order",
    "yes",
    "no",
    "thank you, goodbye",
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stt = PocketsphinxSTTService(sample_rate=RATE)
    tts_cpu = stt_cpu = audio_s = 0.0
    for _ in range(args.rounds):
        for phrase in PHRASES:
            before = _children_cpu()
            pcm = ulaw_to_pcm16(speech_ulaw(phrase))
            tts_cpu += _children_cpu() - before
            audio_s += len(pcm) / 2 / RATE
            before = time.process_time()
            stt.decode(pcm, sample_rate=RATE)
            stt_cpu += time.process_time() - before
    print(f"audio: {audio_s:.1f} s over {args.rounds} rounds of {len(PHRASES)} phrases")
    for name, cpu in (("pocketsphinx STT", stt_cpu), ("espeak-ng TTS", tts_cpu)):
        per_s = cpu / audio_s * 1000
        print(
            f"{name:18s} {per_s:7.1f} ms CPU per call-second -> "
            f"{1000 / per_s:6.1f} calls per core (provider only)"
        )


if __name__ == "__main__":
    main()
