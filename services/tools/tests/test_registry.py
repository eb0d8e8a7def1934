"""The registry: every skill module registers itself with a valid OpenAI function-tool schema."""

from __future__ import annotations

import importlib
import json
import pkgutil

from callcenter.tools import TOOLS_REGISTRY, TOOLS_SCHEMA, skills

EXPECTED = {
    "lookup_customer",
    "verify_identity",
    "check_order_status",
    "list_recent_orders",
    "cancel_order",
    "update_shipping_address",
    "start_return",
    "exchange_items",
    "search_knowledge_base",
    "create_ticket",
    "schedule_callback",
    "transfer_to_agent",
    "send_verification_code",
}


def test_every_skill_is_registered_from_its_own_module() -> None:
    assert set(TOOLS_REGISTRY) == EXPECTED
    modules = {m.name for m in pkgutil.iter_modules(skills.__path__)}
    assert modules == EXPECTED
    for name in modules:
        module = importlib.import_module(f"callcenter.tools.skills.{name}")
        assert module.TOOL_SCHEMA is TOOLS_REGISTRY[name].schema


def test_schemas_are_openai_function_tools() -> None:
    assert [s["function"]["name"] for s in TOOLS_SCHEMA] == list(TOOLS_REGISTRY)
    for schema in TOOLS_SCHEMA:
        assert schema["type"] == "function"
        function = schema["function"]
        assert set(function) == {"name", "description", "parameters"}
        assert len(function["description"]) > 20
        params = function["parameters"]
        assert params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        text = json.dumps(params)
        assert "$ref" not in text and "$defs" not in text and '"title": "' not in text
        for prop in params["properties"].values():
            assert "type" in prop or "enum" in prop, (function["name"], prop)


def test_side_effecting_skills_are_marked() -> None:
    changing = {name for name, s in TOOLS_REGISTRY.items() if s.side_effects}
    assert changing == {
        "cancel_order",
        "update_shipping_address",
        "start_return",
        "exchange_items",
        "create_ticket",
        "schedule_callback",
        "send_verification_code",
    }


def test_nested_argument_models_are_inlined() -> None:
    items = TOOLS_REGISTRY["exchange_items"].schema["function"]["parameters"]["properties"]["items"]
    assert items["type"] == "array"
    assert items["items"]["properties"]["item_id"]["type"] == "string"
    address = TOOLS_REGISTRY["update_shipping_address"].schema["function"]["parameters"]
    assert set(address["properties"]["address"]["required"]) == {"line1", "city", "state", "zip"}
