"""The executor: lookup, validation, timeout and the reply shape whatever happens."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from pydantic import Field

from callcenter.tools import TOOLS_REGISTRY
from callcenter.tools.executor import CallCenterToolExecutor
from callcenter.tools.registry import Skill, SkillContext, ToolArguments, ToolError


class _SleepArgs(ToolArguments):
    seconds: float = Field(ge=0)


async def _sleep(args: _SleepArgs, ctx: SkillContext) -> dict[str, Any]:
    await asyncio.sleep(args.seconds)
    return {"slept": args.seconds}


class _NoArgs(ToolArguments):
    pass


async def _explode(args: _NoArgs, ctx: SkillContext) -> dict[str, Any]:
    raise RuntimeError("database password is hunter2 at /srv/secret.py line 12")


async def _refuse(args: _NoArgs, ctx: SkillContext) -> dict[str, Any]:
    raise ToolError("custom_refusal", "I can't do that.")


def _with_extras(db: asyncpg.Pool, timeout_s: float) -> CallCenterToolExecutor:
    extra = {
        "test_sleep": Skill(
            name="test_sleep", description="sleeps", arguments=_SleepArgs, run=_sleep
        ),
        "test_explode": Skill(
            name="test_explode", description="raises", arguments=_NoArgs, run=_explode
        ),
        "test_refuse": Skill(
            name="test_refuse", description="refuses", arguments=_NoArgs, run=_refuse
        ),
    }
    return CallCenterToolExecutor(db=db, timeout_s=timeout_s, registry={**TOOLS_REGISTRY, **extra})


async def test_unknown_tool(call) -> None:
    result = await call("delete_all_orders", {})
    assert result["success"] is False
    assert result["error"] == "unknown_tool"
    assert result["message"]


async def test_missing_argument_is_a_validation_error(call) -> None:
    result = await call("check_order_status", {})
    assert result == {
        "success": False,
        "error": "invalid_arguments",
        "message": "Some details were missing or not valid: order_id is required.",
    }


async def test_unknown_argument_is_rejected(call) -> None:
    result = await call("check_order_status", {"order_id": "ORD-1001", "customer_id": "CUS-0002"})
    assert result["error"] == "invalid_arguments"
    assert "customer_id" in result["message"]


async def test_wrong_type_and_bounds_are_rejected(call) -> None:
    assert (await call("list_recent_orders", {"limit": "lots"}, verified="CUS-0001"))[
        "error"
    ] == "invalid_arguments"
    assert (await call("list_recent_orders", {"limit": 500}, verified="CUS-0001"))[
        "error"
    ] == "invalid_arguments"
    assert (await call("check_order_status", {"order_id": "banana"}))[
        "error"
    ] == "invalid_arguments"
    assert (await call("verify_identity", {"method": "psychic"}))["error"] == "invalid_arguments"
    assert (await call("check_order_status", ["ORD-1001"]))["error"] == "invalid_arguments"


async def test_arguments_may_arrive_as_a_json_string(call) -> None:
    result = await call("check_order_status", '{"order_id": "ORD-1001"}')
    assert result["success"] is True
    assert result["data"]["order_id"] == "ORD-1001"
    garbled = await call("check_order_status", '{"order_id": ')
    assert garbled["error"] == "invalid_arguments"


async def test_a_tool_past_its_timeout_returns_the_error_shape(db_pool) -> None:
    executor = _with_extras(db_pool, timeout_s=0.2)
    result = await executor.execute(
        "test_sleep", {"seconds": 30}, {"call_id": "c", "tool_call_id": "t"}
    )
    assert result["success"] is False
    assert result["error"] == "timeout"
    assert result["message"]
    fast = await executor.execute("test_sleep", {"seconds": 0}, {})
    assert fast == {"success": True, "data": {"slept": 0}}


async def test_a_tool_that_raises_returns_a_plain_message(db_pool) -> None:
    executor = _with_extras(db_pool, timeout_s=5)
    result = await executor.execute("test_explode", {}, {})
    assert result["success"] is False
    assert result["error"] == "tool_failed"
    for leak in ("hunter2", "Traceback", "RuntimeError", ".py"):
        assert leak not in result["message"]


async def test_a_refusal_keeps_its_code_and_message(db_pool) -> None:
    executor = _with_extras(db_pool, timeout_s=5)
    result = await executor.execute("test_refuse", {}, None)
    assert result == {"success": False, "error": "custom_refusal", "message": "I can't do that."}


async def test_order_numbers_are_normalised(call) -> None:
    for spoken in ("ord-1001", "1001", "#1001", "ORD 1001", "order 1001"):
        result = await call("check_order_status", {"order_id": spoken})
        assert result["success"] is True, spoken
        assert result["data"]["order_id"] == "ORD-1001"


async def test_a_malformed_context_gets_the_error_shape(executor) -> None:
    result = await executor.execute(
        "check_order_status", {"order_id": "ORD-1001"}, {"verified_customer_id": ["CUS-0001"]}
    )
    assert result["success"] is False
    assert result["error"] == "invalid_request"
