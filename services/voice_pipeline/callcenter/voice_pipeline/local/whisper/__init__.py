"""Pipecat's faster-whisper service, fed at the rate Whisper reads (see :mod:`.stt`)."""
