"""Which client reaches a model (``llm.models[].client``), and that litellm is imported only for it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import LLMModelSettings
from callcenter.conversation.llm.selection import build_llm, client_for
from tests.fakes.openai_server import OpenAIStandIn, Reply

from .conftest import Conversation, with_models


def on_client(config: CallCenterConfig, client: str, **entry: object) -> CallCenterConfig:
    """``config`` whose LLMs are reached through ``client`` (and have ``entry``'s settings)."""
    models = [m.model_copy(update={"client": client, **entry}) for m in config.llm.models]
    return config.model_copy(update={"llm": config.llm.model_copy(update={"models": models})})


@pytest.mark.parametrize(
    ("client", "agent"), [("openai", "Python/"), ("litellm", "AsyncOpenAI/Python")]
)
async def test_each_path_reaches_the_model_its_own_way(
    config: CallCenterConfig, bus, llm: OpenAIStandIn, serve, client: str, agent: str
) -> None:
    engine = await serve(
        on_client(with_models(config, llm, "primary"), client, api_key=SecretStr("sk-test-key"))
    )
    assert engine.models[0].name == "openai/primary"
    llm.script("primary", Reply(text="Hello there."))
    result = await Conversation(bus).say("Hi")
    assert result.text == "Hello there."
    (body,) = llm.requests_for("primary")  # the provider prefix is not sent
    headers = body["_headers"]
    assert headers["user-agent"].startswith(agent)
    assert headers["authorization"] == "Bearer sk-test-key"


def test_auto_sends_openai_models_the_lean_way_and_the_rest_through_litellm() -> None:
    assert client_for(LLMModelSettings(model="openai/gpt-4o-mini")) == "openai"
    assert client_for(LLMModelSettings(model="anthropic/claude-3-5-haiku")) == "litellm"
    assert client_for(LLMModelSettings(model="openai/x", client="litellm")) == "litellm"
    assert client_for(LLMModelSettings(model="groq/llama", client="openai")) == "openai"


def test_openai_client_without_a_known_base_url_is_a_clear_error(config: CallCenterConfig) -> None:
    entry = LLMModelSettings(model="hosted_vllm/qwen", client="openai")
    with pytest.raises(ValueError, match="needs api_base"):
        build_llm(entry=entry, settings=config.llm)
    groq = build_llm(
        entry=LLMModelSettings(model="groq/llama-3.1-8b", client="openai"), settings=config.llm
    )
    assert groq.url == "https://api.groq.com/openai/v1/chat/completions"  # type: ignore[attr-defined]
    assert groq.api_model == "llama-3.1-8b"  # type: ignore[attr-defined]


def test_litellm_is_imported_only_for_a_model_that_needs_it() -> None:
    probe = (
        "import sys\n"
        "from callcenter.common.config.sections import LLMModelSettings, LLMSettings\n"
        "from callcenter.conversation.service import build_models\n"
        "from callcenter.common.config import CallCenterConfig\n"
        "def imported(*models):\n"
        "    config = CallCenterConfig(llm=LLMSettings(models=list(models)))\n"
        "    build_models(config)\n"
        "    return 'litellm' in sys.modules\n"
        "lean = LLMModelSettings(model='openai/a', api_base='http://127.0.0.1:9/v1')\n"
        "print(imported(lean), imported(lean, LLMModelSettings(model='anthropic/b', api_key='k')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "True"]


async def test_lean_path_keeps_one_connection_across_turns(
    config: CallCenterConfig, bus, llm: OpenAIStandIn, serve
) -> None:
    engine = await serve(on_client(with_models(config, llm, "primary"), "openai"))
    llm.script("primary", Reply(text="One."), Reply(text="Two."), Reply(text="Three."))
    chat = Conversation(bus)
    for expected in ("One.", "Two.", "Three."):
        assert (await chat.say("Hi")).text == expected
    # each stream is read to its end, so its connection goes back to the pool (no new TCP
    # connection, and no connect CPU, per turn)
    pooled = engine.models[0]._http().connector._conns  # aiohttp's idle connections by host
    assert sum(len(idle) for idle in pooled.values()) == 1
