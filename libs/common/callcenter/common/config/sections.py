"""Settings sections: one pydantic model per service and per provider.

Every field has a committed default in ``config.yaml``; the models here hold the types, the
bounds and the code defaults used when a key is absent everywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    """Base for every section: unknown keys are an error, so a typo fails at start-up."""

    model_config = ConfigDict(extra="forbid")


class NatsSettings(Section):
    """NATS connection and the JetStream stream that carries call and turn events."""

    url: str = "nats://127.0.0.1:4222"
    subject_prefix: str = ""
    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 1.0
    max_reconnect_attempts: int = -1
    stream: str = "CALLCENTER"
    stream_max_age_s: int = 7 * 24 * 3600
    duplicate_window_s: int = 120
    dead_letter_stream: str = "CALLCENTER_DLQ"


class RedisSettings(Section):
    """Redis: live session state and history."""

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "cc:"
    session_ttl_s: int = 24 * 3600


class DatabaseSettings(Section):
    """PostgreSQL connection pool."""

    url: str = "postgresql://postgres@127.0.0.1:5432/test"
    schema_name: str = "public"
    min_pool_size: int = 1
    max_pool_size: int = 10
    command_timeout_s: float = 10.0


class LoggingSettings(Section):
    """Structured logging."""

    level: str = "INFO"
    format: Literal["json", "console"] = "json"


class TelemetrySettings(Section):
    """OpenTelemetry traces and metrics; exported over OTLP/HTTP when an endpoint is set."""

    otlp_endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class GatewaySettings(Section):
    """The HTTP edge: webhooks, chat socket, REST API and dashboard."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = "http://localhost:8000"
    chat_idle_timeout_s: float = 300.0
    chat_max_message_chars: int = 2000
    chat_resume_grace_s: float = 60.0
    session_secret: SecretStr | None = None
    reaper_interval_s: float = 5.0
    turn_timeout_s: float = 30.0
    admin_token: SecretStr | None = None
    sms_idle_timeout_s: float = Field(default=900.0, gt=0)
    sms_reply_budget_s: float = Field(default=5.0, ge=0, le=14)
    # abuse limits (callcenter.gateway.limits); 0 switches a limit off
    max_body_bytes: int = Field(default=64 * 1024, ge=0)
    chat_max_frame_bytes: int = Field(default=16 * 1024, ge=0)
    chat_messages_per_minute: int = Field(default=30, ge=0)
    chat_messages_per_minute_per_ip: int = Field(default=300, ge=0)
    chat_sessions_per_ip: int = Field(default=50, ge=0)


class VoicePipelineSettings(Section):
    """The Pipecat voice pipeline serving Twilio Media Streams."""

    host: str = "127.0.0.1"
    port: int = 8001
    public_ws_url: str = "ws://localhost:8001/twilio/media"
    #: the browser-call socket as browsers reach it; None: public_ws_url's host, path /web/media
    web_ws_url: str | None = None
    stream_token_secret: SecretStr | None = None
    stream_token_ttl_s: float = Field(default=60.0, gt=0)
    smart_turn: bool = True
    vad_stop_secs: float = Field(default=0.2, gt=0)
    turn_timeout_s: float = 20.0
    backchannels: list[str] = Field(
        default_factory=lambda: [
            "uh-huh",
            "uh huh",
            "mm-hmm",
            "mhm",
            "mm",
            "hmm",
            "okay",
            "ok",
            "right",
            "yeah",
            "yes",
            "yep",
            "sure",
            "i see",
            "got it",
            "alright",
            "uh",
            "um",
        ]
    )
    dtmf_timeout_s: float = Field(default=2.0, gt=0)
    silence_reprompt_s: float = Field(default=8.0, gt=0)
    silence_hangup_s: float = Field(default=20.0, gt=0)
    max_call_s: float = Field(default=1800.0, gt=0)
    reprompt_text: str = "Are you still there? How can I help?"
    goodbye_text: str = "I haven't heard from you, so I'll end the call now. Goodbye."
    max_call_text: str = (
        "We've reached the time limit for this call. Thank you for calling, goodbye."
    )
    apology_text: str = (
        "Sorry, I'm having trouble on my side. Let me get you to someone who can help."
    )
    #: said instead when no one can take the call over (no agent line, or a call from the
    #: browser): it must not promise a person
    apology_end_text: str = (
        "Sorry, I'm having trouble on my side and can't go on with this call. Please try again "
        "in a few minutes."
    )
    provider_down_s: float = Field(default=6.0, gt=0)
    # --- cost per call and capacity (issue 18) ---
    #: run Silero VAD on the event loop (0.1 ms per 32 ms chunk) instead of a thread per call
    vad_inline: bool = True
    #: skip the (inline) VAD model on windows whose energy proves them below VAD's loudness bar
    vad_energy_gate: bool = True
    #: no Smart Turn run when the STT has already endpointed a finished sentence (speech_final
    #: on text ending in . ? !, before the VAD's stop: deepgram.endpointing_ms)
    smart_turn_skip_on_stt_endpoint: bool = True
    #: caller audio joined into frames of this many ms after the VAD (20: Twilio's, not joined)
    stt_audio_chunk_ms: int = Field(default=60, ge=20, le=250)
    #: per-message deflate on the media socket (μ-law audio barely compresses; costs CPU)
    media_deflate: bool = False
    #: our pass-through processors (watchdog, chunker, taps), the VAD and the keypad run in
    #: pipecat's direct mode: a frame is handled in the pusher's task, no queue and task hop each
    direct_mode_processors: bool = True
    #: pipecat's TurnTrackingObserver (nothing here reads it; a queue put per frame pushed)
    pipeline_turn_tracking: bool = False
    #: media messages parsed and decoded once, μ-law without a resampler at 8 kHz (serializer.py)
    media_fast_path: bool = True
    #: drop the caller's audio right after the user turn processor (nothing later uses it)
    caller_audio_end: bool = True
    #: join the phone caller's audio into stt_audio_chunk_ms frames as it arrives (serializer,
    #: before the VAD); off: after the VAD (AudioChunker), the VAD seeing every 20 ms message
    media_join_caller_audio: bool = True
    #: the bot's audio in media messages of this many ms (pipecat's default 40)
    audio_out_chunk_ms: int = Field(default=40, ge=20, le=100, multiple_of=20)
    #: measured CPU per call-second of this process (bench/voice_calls.py); sizes the capacity
    cpu_ms_per_call_second: float = Field(default=35.0, gt=0)
    #: cores this replica may use (its CPU limit); None: the cores the OS gives the process
    cpu_limit_cores: float | None = Field(default=None, gt=0)
    #: share of the CPU limit calls may use (the rest is headroom for bursts and the runtime)
    cpu_headroom: float = Field(default=0.75, gt=0, le=1)
    #: hard cap on concurrent calls; None: derived from the CPU figures above
    max_calls: int | None = Field(default=None, ge=1)
    #: what a caller hears when every voice replica is at capacity (the gateway says it)
    overflow_text: str = (
        "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."
    )
    #: how many times one phone call's media stream is resumed on another replica after its
    #: replica died mid-call (the gateway's ``<Connect action>``); 0 hangs up as before
    max_resumes: int = Field(default=2, ge=0)
    #: on SIGTERM (a rolling deploy), hand live phone calls to replicas with room (resumed
    #: there) instead of ending them
    hand_off_on_shutdown: bool = True
    #: what a resumed call hears instead of the greeting
    resume_text: str = "Sorry, we got cut off for a moment. I'm still here. Where were we?"
    # --- speech providers (issue 17) ---
    #: speech-to-text: deepgram (cloud), pocketsphinx (embedded, no key, no download) or whisper
    #: (faster-whisper, weights in speech_cache_dir); auto: deepgram when its key is set
    stt_provider: Literal["auto", "deepgram", "pocketsphinx", "whisper"] = "auto"
    #: text-to-speech: elevenlabs (cloud), espeak (embedded espeak-ng) or piper (voice in
    #: speech_cache_dir); auto: elevenlabs when its key is set
    tts_provider: Literal["auto", "elevenlabs", "espeak", "piper"] = "auto"
    #: where local model weights live (fetched once, or baked into the image / a mounted volume)
    speech_cache_dir: str = "~/.cache/callcenter/speech"
    #: download missing whisper/piper weights into the cache; false: fail with a clear error
    speech_download: bool = False
    whisper_model: str = "tiny.en"
    piper_voice: str = "en_US-lessac-low"
    espeak_voice: str = "en-us"


class ConversationSettings(Section):
    """The conversation engine."""

    health_host: str = "127.0.0.1"
    health_port: int = 8002
    queue_group: str = "conversation"
    max_tool_rounds: int = 5
    history_token_budget: int = 3000
    tools_schema_ttl_s: float = 60.0
    tool_timeout_s: float = 8.0
    persona: str = "Ava, the assistant of Acme Outfitters"
    greeting: str = "Hi, this is Ava from Acme Outfitters. How can I help you today?"
    system_prompt: str = (
        "You are {persona}. You help customers with orders, returns, exchanges, addresses and "
        "store policies. Verify the customer before discussing account details. Keep answers "
        "short and plain."
    )
    sms_max_chars: int = 320
    voice_max_chars: int = 600
    turn_lock_timeout_s: float = 10.0


class ToolsSettings(Section):
    """The tools (skills) service."""

    health_host: str = "127.0.0.1"
    health_port: int = 8003
    queue_group: str = "tools"
    call_timeout_s: float = 5.0


class PostCallSettings(Section):
    """The post-call consumers."""

    health_host: str = "127.0.0.1"
    health_port: int = 8004
    max_deliver: int = 6
    ack_wait_s: float = 30.0
    retry_delays_s: list[float] = Field(default_factory=lambda: [1.0, 2.0, 5.0, 10.0, 30.0])
    steps: list[str] = Field(
        default_factory=lambda: [
            "transcript",
            "summary",
            "crm",
            "email",
            "ticket",
            "metrics",
            "notify",
            "verified",
            "voice_timings",
        ]
    )
    ticket_satisfaction_threshold: int = Field(default=2, ge=1, le=5)
    durable_prefix: str = "post_call_"
    concurrency: int = Field(default=10, ge=1)
    #: Messages fetched at a time; the steps that write only to PostgreSQL (transcript, metrics)
    #: handle each fetch in one transaction.
    batch_size: int = Field(default=100, ge=1)
    summary_wait_attempts: int = Field(default=5, ge=1)
    summary_wait_delay_s: float = 1.0
    ticket_priority_urgent_at: int = Field(default=1, ge=1, le=5)


class LLMModelSettings(Section):
    """One model in the ordered fallback list, addressed the way litellm names it."""

    model: str
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    api_base: str | None = None
    timeout_s: float | None = None
    #: How the model is reached. ``openai``: straight to an OpenAI-compatible
    #: ``{api_base}/chat/completions`` (OpenAI, Azure's v1 API, vLLM, Ollama, Groq...), a lean
    #: streaming client; ``litellm``: through litellm, which translates other vendors' APIs;
    #: ``auto``: ``openai`` for ``openai/...`` models, litellm for the rest.
    client: Literal["auto", "openai", "litellm"] = "auto"


class LLMSettings(Section):
    """LLM providers, tried in order; the offline engine answers when all fail or none is set."""

    models: list[LLMModelSettings] = Field(default_factory=list)
    timeout_s: float = 15.0
    retries: int = 1
    retry_backoff_s: float = 0.3
    temperature: float = 0.3
    max_tokens: int | None = 400
    offline_fallback: bool = True


class TwilioSettings(Section):
    """Twilio telephony and messaging."""

    enabled: bool = False
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    api_base_url: str | None = None
    agent_number: str | None = None
    agent_queue: str | None = None
    sms_help_text: str = "Acme Outfitters support. Reply with your question, or STOP to opt out. Msg&data rates may apply."
    sms_opt_out_text: str = "You are unsubscribed from Acme Outfitters support and will receive no more messages. Reply START to resubscribe."
    sms_opt_in_text: str = (
        "You are resubscribed to Acme Outfitters support. Reply HELP for help, STOP to opt out."
    )
    sms_media_text: str = "Sorry, I can only read text messages, so I could not open your picture or file. Please describe it in words."
    sms_max_chars: int = Field(default=1600, ge=160, le=1600)
    sms_caller_id_verifies: bool = False
    #: Twilio passes the carrier's caller ID on voice calls; set false where spoofing is a concern.
    voice_caller_id_verifies: bool = True


class DeepgramSettings(Section):
    """Deepgram streaming speech-to-text."""

    enabled: bool = False
    api_key: SecretStr | None = None
    url: str | None = None
    model: str = "nova-3"
    language: str = "en-US"
    #: ms of silence before Deepgram endpoints (``speech_final``); None: ``endpointing=false``.
    #: Turns end at the VAD's stop (``voice_pipeline.vad_stop_secs``, 200 ms) and Smart Turn,
    #: and pipecat asks for a ``Finalize`` then; the endpoint only lets Smart Turn be skipped
    #: (``smart_turn_skip_on_stt_endpoint``), which needs it before the VAD's stop. Deepgram's
    #: default (10 ms) endpoints between words; its 300-500 ms for mid-thought pauses would
    #: come after the VAD's stop, when Smart Turn already judged the pause.
    endpointing_ms: int | None = Field(default=100, ge=10)


class ElevenLabsSettings(Section):
    """ElevenLabs streaming text-to-speech."""

    enabled: bool = False
    api_key: SecretStr | None = None
    url: str | None = None
    voice_id: str = "21m00Tcm4TlvDq8ikWAM"
    model: str = "eleven_flash_v2_5"


class SmtpSettings(Section):
    """SMTP for follow-up email."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    #: PEM CA bundle to trust for the server's TLS certificate (None: the system's).
    tls_ca_file: str | None = None
    from_address: str = "Acme Outfitters Support <support@acme.example>"
    timeout_s: float = 10.0
    company_name: str = "Acme Outfitters"


class CrmSettings(Section):
    """CRM and ticket adapters."""

    adapter: Literal["builtin", "hubspot"] = "builtin"
    hubspot_token: SecretStr | None = None
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_timeout_s: float = 10.0


# --- promises (issue 15): customer notifications and callback hours -------------------------------


class NotificationSettings(Section):
    """Messages the assistant promises (codes, confirmations), sent by post_call's ``notify``."""

    #: The business number SMS notifications come from (Twilio's Messages API ``From``).
    sms_from: str | None = None
    code_ttl_s: int = Field(default=600, ge=60, le=3600)
    #: One-time codes sent per customer per hour, over every call and channel.
    codes_per_hour: int = Field(default=3, ge=1, le=20)
    #: Where a return label is downloaded; ``{return_id}`` is filled in.
    return_label_url: str = "http://localhost:8000/returns/{return_id}/label.pdf"
    #: How often the tools service republishes notifications whose publish failed.
    outbox_sweep_s: float = Field(default=5.0, gt=0)
    #: Seals one-time codes on the bus (tools and post_call need the same one); unset, the
    #: gateway's session secret or Twilio's auth token is used, and with none of them codes are
    #: not sent (see callcenter.common.sealing).
    code_key: SecretStr | None = None


class CallbackSettings(Section):
    """When a person can call a customer back (the hours the knowledge base states)."""

    #: The business's own zone, in which the hours below hold.
    timezone: str = "America/Los_Angeles"
    #: ISO weekdays (1 = Monday) and local opening hours ("HH:MM").
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    opens: str = "06:00"
    closes: str = "18:00"
    #: Zone assumed for a customer whose address gives none (and who did not say).
    default_customer_timezone: str = "America/New_York"


class SecuritySettings(Section):
    """Abuse limits and what the gateway shows to strangers (issue 13)."""

    #: Serve ``/docs`` and ``/openapi.json`` to anyone; otherwise only to an admin.
    public_api_docs: bool = False
    #: Wrong admin credentials (Bearer on ``/api``) from one client address before 429s.
    admin_auth_max_failures: int = Field(default=10, ge=1)
    admin_auth_window_s: float = Field(default=300.0, gt=0)
    #: Failed identity checks against one customer or order (any channel, any call) before it
    #: is locked, and per source (IP, phone number) before that source is refused.
    verification_max_failures_per_target: int = Field(default=5, ge=1)
    verification_max_failures_per_source: int = Field(default=10, ge=1)
    verification_window_s: float = Field(default=3600.0, gt=0)


class BusinessHours(Section):
    """When agents work: weekdays (0 = Monday) and opening hours in ``timezone``."""

    timezone: str = "UTC"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])
    opens: str = Field(default="00:00", pattern=r"^\d{2}:\d{2}$")
    closes: str = Field(default="24:00", pattern=r"^\d{2}:\d{2}$")


class InboxSettings(Section):
    """The agent inbox: hand-offs from the bot to named human agents."""

    agent_wait_s: float = Field(default=180.0, gt=0, description="no agent by then: ticket")
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    supervisor_name: str = Field(default="Supervisor", min_length=1, max_length=60)
    sweep_interval_s: float = Field(default=2.0, gt=0)
    max_message_chars: int = Field(default=2000, gt=0)
