"""Where configuration comes from, and in what order.

Precedence, lowest first: ``config.yaml`` < secret files < ``.env`` < process environment.
Two spellings of an environment variable are understood in both ``.env`` and the environment:

* the structured form ``CALLCENTER_<SECTION>__<KEY>`` (for example ``CALLCENTER_GATEWAY__PORT``);
* the conventional names that operators already set (``NATS_URL``, ``OPENAI_API_KEY``…), listed in
  :data:`ENV_ALIASES`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

#: Conventional variable name -> dotted config path.
ENV_ALIASES: dict[str, str] = {
    "NATS_URL": "nats.url",
    "REDIS_URL": "redis.url",
    "DATABASE_URL": "database.url",
    "LOG_LEVEL": "logging.level",
    "LOG_FORMAT": "logging.format",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "telemetry.otlp_endpoint",
    "PUBLIC_BASE_URL": "gateway.public_base_url",
    "ADMIN_TOKEN": "gateway.admin_token",
    "SESSION_SECRET": "gateway.session_secret",
    "CODE_KEY": "notifications.code_key",
    "TWILIO_ACCOUNT_SID": "twilio.account_sid",
    "TWILIO_AUTH_TOKEN": "twilio.auth_token",
    "DEEPGRAM_API_KEY": "deepgram.api_key",
    "ELEVENLABS_API_KEY": "elevenlabs.api_key",
    "SMTP_HOST": "smtp.host",
    "SMTP_PORT": "smtp.port",
    "SMTP_USERNAME": "smtp.username",
    "SMTP_PASSWORD": "smtp.password",
    "HUBSPOT_TOKEN": "crm.hubspot_token",
}

ENV_PREFIX = "CALLCENTER_"
NESTED_DELIMITER = "__"


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    node = target
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _values_from_mapping(mapping: dict[str, str | None]) -> dict[str, Any]:
    """Turn a flat variable mapping into the nested dict the settings model takes."""
    out: dict[str, Any] = {}
    for name, dotted in ENV_ALIASES.items():
        value = mapping.get(name)
        if value not in (None, ""):
            _set_path(out, dotted, value)
    for name, value in mapping.items():
        if value is None or not name.upper().startswith(ENV_PREFIX):
            continue
        if name.upper() in {"CALLCENTER_CONFIG", "CALLCENTER_ENV_FILE", "CALLCENTER_SECRETS_DIR"}:
            continue
        path = name[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER.lower())
        _set_path(out, ".".join(path), _maybe_json(value))
    return out


def _maybe_json(value: str) -> Any:
    """Lists and objects may be given as JSON in a variable (``CALLCENTER_LLM__MODELS='[...]'``)."""
    stripped = value.strip()
    if stripped[:1] in "[{":
        import json

        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source over a flat name -> value mapping."""

    def __init__(self, settings_cls: type[BaseSettings], mapping: dict[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._values = _values_from_mapping(mapping)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


class EnvironmentSource(_MappingSource):
    """The process environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, dict(os.environ))


class DotEnvSource(_MappingSource):
    """A ``.env`` file (``CALLCENTER_ENV_FILE`` or ``./.env``); absent is fine."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        mapping = dict(dotenv_values(path)) if path.is_file() else {}
        super().__init__(settings_cls, mapping)


class SecretFilesSource(_MappingSource):
    """One file per variable in ``CALLCENTER_SECRETS_DIR`` (how Kubernetes mounts a Secret)."""

    def __init__(self, settings_cls: type[BaseSettings], directory: Path | None) -> None:
        mapping: dict[str, str | None] = {}
        if directory and directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_file() and not entry.name.startswith("."):
                    mapping[entry.name] = entry.read_text().strip()
        super().__init__(settings_cls, mapping)


def config_file_path() -> Path:
    """The YAML file with committed defaults."""
    return Path(os.environ.get("CALLCENTER_CONFIG", "config.yaml"))


def env_file_path() -> Path:
    """The optional ``.env`` file."""
    return Path(os.environ.get("CALLCENTER_ENV_FILE", ".env"))


def secrets_dir_path() -> Path | None:
    """The optional directory of secret files."""
    value = os.environ.get("CALLCENTER_SECRETS_DIR")
    return Path(value) if value else None
