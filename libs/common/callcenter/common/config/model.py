"""The one validated configuration model, and the start-up check for provider keys."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from callcenter.common.config.sections import (
    CallbackSettings,
    ConversationSettings,
    CrmSettings,
    DatabaseSettings,
    DeepgramSettings,
    ElevenLabsSettings,
    GatewaySettings,
    InboxSettings,
    LLMSettings,
    LoggingSettings,
    NatsSettings,
    NotificationSettings,
    PostCallSettings,
    RedisSettings,
    SecuritySettings,
    SmtpSettings,
    TelemetrySettings,
    ToolsSettings,
    TwilioSettings,
    VoicePipelineSettings,
)
from callcenter.common.config.sources import (
    DotEnvSource,
    EnvironmentSource,
    SecretFilesSource,
    config_file_path,
    env_file_path,
    secrets_dir_path,
)

#: litellm provider prefix -> the variable its key conventionally lives in.
PROVIDER_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "azure": "AZURE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
}


class MissingConfigError(ValueError):
    """A provider is enabled but a key it needs is not set anywhere."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("configuration incomplete:\n  - " + "\n  - ".join(problems))


class CallCenterConfig(BaseSettings):
    """Everything every service reads, one section per service and per provider."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    nats: NatsSettings = Field(default_factory=NatsSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    voice_pipeline: VoicePipelineSettings = Field(default_factory=VoicePipelineSettings)
    conversation: ConversationSettings = Field(default_factory=ConversationSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    post_call: PostCallSettings = Field(default_factory=PostCallSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    deepgram: DeepgramSettings = Field(default_factory=DeepgramSettings)
    elevenlabs: ElevenLabsSettings = Field(default_factory=ElevenLabsSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest priority first: init kwargs, env, .env, secret files, config.yaml."""
        yaml_path = config_file_path()
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            EnvironmentSource(settings_cls),
            DotEnvSource(settings_cls, env_file_path()),
            SecretFilesSource(settings_cls, secrets_dir_path()),
        ]
        if yaml_path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _require_provider_keys(self) -> CallCenterConfig:
        problems: list[str] = []
        if self.twilio.enabled:
            if not self.twilio.account_sid:
                problems.append(
                    _missing("twilio.account_sid", "TWILIO_ACCOUNT_SID", "twilio.enabled is true")
                )
            if not _secret(self.twilio.auth_token):
                problems.append(
                    _missing("twilio.auth_token", "TWILIO_AUTH_TOKEN", "twilio.enabled is true")
                )
        if self.deepgram.enabled and not _secret(self.deepgram.api_key):
            problems.append(
                _missing("deepgram.api_key", "DEEPGRAM_API_KEY", "deepgram.enabled is true")
            )
        if self.elevenlabs.enabled and not _secret(self.elevenlabs.api_key):
            problems.append(
                _missing("elevenlabs.api_key", "ELEVENLABS_API_KEY", "elevenlabs.enabled is true")
            )
        if self.crm.adapter == "hubspot" and not _secret(self.crm.hubspot_token):
            problems.append(
                _missing("crm.hubspot_token", "HUBSPOT_TOKEN", "crm.adapter is hubspot")
            )
        for index, entry in enumerate(self.llm.models):
            if _secret(entry.api_key) or entry.api_base:
                continue
            env_name = entry.api_key_env or PROVIDER_KEY_ENV.get(entry.model.split("/", 1)[0])
            if env_name is None:
                continue
            if os.environ.get(env_name):
                entry.api_key = SecretStr(os.environ[env_name])
                continue
            problems.append(
                _missing(
                    f"llm.models[{index}].api_key",
                    env_name,
                    f"llm.models[{index}] is {entry.model}",
                )
            )
        if problems:
            raise MissingConfigError(problems)
        return self


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def first_secret(*candidates: SecretStr | None) -> bytes | None:
    """The first configured, non-empty secret of ``candidates`` (a fallback chain), as bytes."""
    for candidate in candidates:
        if _secret(candidate):
            return _secret(candidate).encode()
    return None


def _missing(key: str, env_name: str, because: str) -> str:
    section, _, rest = key.partition(".")
    structured = f"CALLCENTER_{section.upper()}__{rest.split('[')[0].upper()}"
    return (
        f"{key} is required because {because}: set {env_name} in the environment or .env "
        f"(or {structured}, or {key} in config.yaml)"
    )


def load_config(**overrides: Any) -> CallCenterConfig:
    """Load and validate the configuration; raise :class:`MissingConfigError` naming missing keys."""
    try:
        return CallCenterConfig(**overrides)
    except MissingConfigError:
        raise
    except ValueError as exc:
        inner = getattr(exc, "errors", None)
        if callable(inner):
            for err in inner():
                ctx_error = (err.get("ctx") or {}).get("error")
                if isinstance(ctx_error, MissingConfigError):
                    raise ctx_error from None
        raise
