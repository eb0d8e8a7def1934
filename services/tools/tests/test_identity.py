"""lookup_customer and verify_identity: nothing personal before verification, deterministic checks."""

from __future__ import annotations

import uuid

from callcenter.tools.verification import MAX_FAILED_ATTEMPTS, issue_code


async def test_lookup_before_verification_reveals_nothing_personal(call, make_shop) -> None:
    shop = await make_shop()
    for args in (
        {"phone": shop.phone},
        {"email": shop.email.upper()},
        {"last_name": f"person{shop.customer_id[5:]}", "zip": shop.zip},
    ):
        result = await call("lookup_customer", args)
        assert result["success"] is True, args
        data = result["data"]
        # Not even whether the account exists, nor its id (issue 13): the answer for a stranger.
        assert data == (await call("lookup_customer", {"email": "nobody@nowhere.example"}))["data"]
        assert data["verified"] is False and shop.customer_id not in str(data)
        assert data["verification_methods"] == ["order_number_zip", "one_time_code"]


async def test_lookup_offers_caller_id_only_when_the_caller_number_matches(call, make_shop) -> None:
    shop = await make_shop()
    result = await call("lookup_customer", {}, channel="voice", caller=shop.phone)
    assert result["data"]["verification_methods"][0] == "caller_id"
    other = await call(
        "lookup_customer", {"phone": shop.phone}, channel="voice", caller="+15550000000"
    )
    assert "caller_id" not in other["data"]["verification_methods"]


async def test_lookup_gives_details_to_the_verified_owner_only(call, make_shop) -> None:
    shop, other = await make_shop(), await make_shop()
    own = await call("lookup_customer", {"email": shop.email}, verified=shop.customer_id)
    assert own["data"]["email"] == shop.email
    assert own["data"]["address"]["zip"] == shop.zip
    theirs = await call("lookup_customer", {"email": other.email}, verified=shop.customer_id)
    assert theirs["success"] is False
    assert theirs["error"] == "not_your_account"
    assert other.email not in theirs["message"]


async def test_lookup_refusals(call) -> None:
    missing = await call(
        "lookup_customer", {"email": "nobody@nowhere.example"}, verified="CUST-NOBODY"
    )
    assert missing["error"] == "not_your_account"
    nothing = await call("lookup_customer", {})
    assert nothing["error"] == "invalid_arguments"


async def test_demo_customer_is_seeded(call) -> None:
    result = await call("lookup_customer", {"phone": "+1 (555) 555-0101"}, verified="CUS-0001")
    data = result["data"]
    assert data["customer_id"] == "CUS-0001"
    assert data["zip"] == "94105"
    assert data["email"] == "maya.patel@example.com"


async def test_verify_by_order_number_and_zip(call, make_shop) -> None:
    shop = await make_shop("shipped")
    good = await call(
        "verify_identity",
        {"method": "order_number_zip", "order_id": shop.order("shipped"), "zip": shop.zip},
    )
    assert good["success"] is True
    assert good["data"]["verified_customer_id"] == shop.customer_id
    wrong = await call(
        "verify_identity",
        {"method": "order_number_zip", "order_id": shop.order("shipped"), "zip": "99999"},
    )
    assert wrong["error"] == "verification_failed"
    no_order = await call(
        "verify_identity",
        {"method": "order_number_zip", "order_id": "ORD-999999999", "zip": shop.zip},
    )
    assert no_order["error"] == "verification_failed"
    assert no_order["message"] == wrong["message"]  # no hint whether the order exists
    incomplete = await call(
        "verify_identity", {"method": "order_number_zip", "order_id": shop.order("shipped")}
    )
    assert incomplete["error"] == "invalid_arguments"


async def test_demo_order_verifies_maya(call) -> None:
    result = await call(
        "verify_identity", {"method": "order_number_zip", "order_id": "ORD-1001", "zip": "94105"}
    )
    assert result["data"]["verified_customer_id"] == "CUS-0001"


async def test_verify_by_caller_id_on_voice_and_sms_only(call, make_shop) -> None:
    shop = await make_shop()
    national = "(" + shop.phone[2:5] + ") " + shop.phone[5:8] + "-" + shop.phone[8:]
    for channel in ("voice", "sms"):
        result = await call(
            "verify_identity", {"method": "caller_id"}, channel=channel, caller=national
        )
        assert result["data"]["verified_customer_id"] == shop.customer_id, channel
    chat = await call("verify_identity", {"method": "caller_id"}, channel="chat", caller=shop.phone)
    assert chat["error"] == "method_unavailable"
    stranger = await call(
        "verify_identity", {"method": "caller_id"}, channel="voice", caller="+15550001234"
    )
    assert stranger["error"] == "verification_failed"


async def test_caller_id_comes_from_context_never_from_arguments(call, make_shop) -> None:
    shop = await make_shop()
    result = await call(
        "verify_identity",
        {"method": "caller_id", "phone": shop.phone},
        channel="voice",
        caller="+15550001234",
    )
    assert result["error"] == "verification_failed"


async def test_one_time_code_works_once(call, make_shop, db_pool) -> None:
    shop = await make_shop()
    async with db_pool.acquire() as conn:
        code = await issue_code(conn, shop.customer_id)
    wrong = await call(
        "verify_identity",
        {
            "method": "one_time_code",
            "email": shop.email,
            "code": "000000" if code != "000000" else "111111",
        },
    )
    assert wrong["error"] == "verification_failed"
    good = await call(
        "verify_identity", {"method": "one_time_code", "email": shop.email, "code": code}
    )
    assert good["data"]["verified_customer_id"] == shop.customer_id
    again = await call(
        "verify_identity",
        {"method": "one_time_code", "customer_id": shop.customer_id, "code": code},
    )
    assert again["error"] == "verification_failed"


async def test_code_of_one_customer_does_not_verify_another(call, make_shop, db_pool) -> None:
    shop, other = await make_shop(), await make_shop()
    async with db_pool.acquire() as conn:
        code = await issue_code(conn, shop.customer_id)
    result = await call(
        "verify_identity",
        {"method": "one_time_code", "customer_id": other.customer_id, "code": code},
    )
    assert result["error"] == "verification_failed"


async def test_too_many_failed_attempts_stop_verification(call, make_shop) -> None:
    shop = await make_shop("delivered")
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    errors = []
    for _ in range(MAX_FAILED_ATTEMPTS):
        result = await call(
            "verify_identity",
            {"method": "order_number_zip", "order_id": shop.order("delivered"), "zip": "00000"},
            call_id=call_id,
        )
        errors.append(result["error"])
    # The last failure also locks the order and its customer across calls (issue 13).
    assert errors == ["verification_failed"] * (MAX_FAILED_ATTEMPTS - 1) + ["verification_locked"]
    blocked = await call(
        "verify_identity",
        {"method": "order_number_zip", "order_id": shop.order("delivered"), "zip": shop.zip},
        call_id=call_id,
    )
    assert blocked["error"] == "too_many_attempts"
    # A new call no longer starts the count again: the right answer is refused too.
    fresh_call = await call(
        "verify_identity",
        {"method": "order_number_zip", "order_id": shop.order("delivered"), "zip": shop.zip},
    )
    assert fresh_call["error"] == "verification_locked"


async def test_caller_id_counts_only_on_channels_config_trusts(db_pool, make_shop) -> None:
    """An untrusted channel's caller ID never verifies, whatever the request context claims."""
    from callcenter.tools.executor import CallCenterToolExecutor

    shop = await make_shop()
    voice_only = CallCenterToolExecutor(db=db_pool, timeout_s=5, caller_id_channels=["voice"])
    context = {
        "call_id": "c-trust",
        "channel": "sms",
        "tool_call_id": "t1",
        "caller_number": shop.phone,
    }
    refused = await voice_only.execute(
        "verify_identity", {"method": "caller_id"}, {**context, "caller_id_trusted": True}
    )
    assert refused["success"] is False and refused["error"] == "method_unavailable"
    allowed = await voice_only.execute(
        "verify_identity",
        {"method": "caller_id"},
        {**context, "channel": "voice", "tool_call_id": "t2"},
    )
    assert allowed["data"]["verified_customer_id"] == shop.customer_id
