"""Configuration: precedence, the error that names a missing key, masked secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.common.config import MissingConfigError, load_config, masked_config


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CALLCENTER_*/provider variables from the outer environment; files in tmp_path."""
    import os

    for name in list(os.environ):
        if name.startswith("CALLCENTER_") or name in {
            "NATS_URL", "REDIS_URL", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID",
            "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY",
        }:  # fmt: skip
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLCENTER_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("CALLCENTER_ENV_FILE", str(tmp_path / ".env"))
    return tmp_path


def test_yaml_then_dotenv_then_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "config.yaml").write_text(
        "gateway:\n  port: 9001\n  chat_idle_timeout_s: 11\nconversation:\n  max_tool_rounds: 7\n"
    )
    assert load_config().gateway.port == 9001

    (clean_env / ".env").write_text(
        "CALLCENTER_GATEWAY__PORT=9002\nREDIS_URL=redis://envfile:6379/0\n"
    )
    cfg = load_config()
    assert cfg.gateway.port == 9002  # .env beats yaml
    assert cfg.gateway.chat_idle_timeout_s == 11  # untouched yaml key survives the deep merge
    assert cfg.redis.url == "redis://envfile:6379/0"  # conventional names work in .env

    monkeypatch.setenv("CALLCENTER_GATEWAY__PORT", "9003")
    monkeypatch.setenv("REDIS_URL", "redis://environment:6379/0")
    cfg = load_config()
    assert cfg.gateway.port == 9003  # environment beats .env
    assert cfg.redis.url == "redis://environment:6379/0"
    assert cfg.conversation.max_tool_rounds == 7


def test_secret_files_sit_between_yaml_and_dotenv(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = clean_env / "secrets"
    secrets.mkdir()
    (secrets / "DEEPGRAM_API_KEY").write_text("from-file\n")
    monkeypatch.setenv("CALLCENTER_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("CALLCENTER_DEEPGRAM__ENABLED", "true")
    assert load_config().deepgram.api_key.get_secret_value() == "from-file"
    (clean_env / ".env").write_text("DEEPGRAM_API_KEY=from-dotenv\n")
    assert load_config().deepgram.api_key.get_secret_value() == "from-dotenv"


def test_missing_key_of_enabled_provider_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCENTER_TWILIO__ENABLED", "true")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    with pytest.raises(MissingConfigError) as info:
        load_config()
    message = str(info.value)
    assert "twilio.auth_token" in message and "TWILIO_AUTH_TOKEN" in message
    assert "account_sid" not in message  # only what is actually missing

    monkeypatch.setenv("CALLCENTER_LLM__MODELS", '[{"model": "anthropic/claude-3-5-haiku-latest"}]')
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    with pytest.raises(MissingConfigError, match="ANTHROPIC_API_KEY"):
        load_config()
    # An OpenAI-compatible local endpoint needs no key.
    monkeypatch.setenv(
        "CALLCENTER_LLM__MODELS",
        '[{"model": "openai/llama3", "api_base": "http://127.0.0.1:1/v1"}]',
    )
    assert load_config().llm.models[0].api_base == "http://127.0.0.1:1/v1"


def test_unknown_key_is_an_error(clean_env: Path) -> None:
    (clean_env / "config.yaml").write_text("gateway:\n  prot: 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_config()


def test_config_check_masks_secrets(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "super-secret-token")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@db:5432/cc")
    masked = masked_config(load_config())
    assert masked["twilio"]["auth_token"] == "********"
    assert masked["database"]["url"] == "postgresql://app:********@db:5432/cc"

    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "super-secret-token" not in result.stdout and "hunter2" not in result.stdout
    assert "auth_token: '********'" in result.stdout


def test_config_check_fails_naming_the_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCENTER_ELEVENLABS__ENABLED", "true")
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "elevenlabs.api_key" in result.stderr and "ELEVENLABS_API_KEY" in result.stderr


def test_committed_config_yaml_loads() -> None:
    """The repository's config.yaml is valid and matches the model (no stray keys)."""
    root = Path(__file__).resolve().parents[2]
    import os

    saved = os.environ.get("CALLCENTER_CONFIG")
    os.environ["CALLCENTER_CONFIG"] = str(root / "config.yaml")
    try:
        cfg = load_config()
    finally:
        if saved is None:
            os.environ.pop("CALLCENTER_CONFIG", None)
        else:
            os.environ["CALLCENTER_CONFIG"] = saved
    assert cfg.gateway.port == 8000
