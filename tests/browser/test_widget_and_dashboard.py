"""A visitor chats through the embedded widget; a supervisor watches it live on the dashboard.

Real processes (tools, conversation, post_call, gateway) and a real browser (Debian's chromium).
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser.conftest import ADMIN_TOKEN, Stack

pytestmark = pytest.mark.timeout(120)

GREETING = "How can I help you today?"
ORDER_ANSWER = re.compile(r"UPS|1Z999AA10123456784|shipped|in transit", re.IGNORECASE)
TURN_TIMEOUT_MS = 30_000
SUMMARY_TIMEOUT_MS = 45_000


async def stored_chat(page: Page, stack: Stack) -> dict:
    """What the widget keeps in sessionStorage (call_id, resume_token, messages)."""
    raw = await page.evaluate(f"sessionStorage.getItem('callcenter-chat:{stack.base}')")
    return json.loads(raw or "{}")


def watch_errors(page: Page) -> list[str]:
    """Script errors the page throws (the list fills as they happen)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def supervisor(
    browser: Browser, stack: Stack, *, viewport=None
) -> tuple[BrowserContext, Page]:
    """A logged-in dashboard tab (through the login form)."""
    context = await browser.new_context(viewport=viewport or {"width": 1366, "height": 900})
    page = await context.new_page()
    await page.goto(stack.base + "/dashboard")
    await expect(page).to_have_url(re.compile(r"/dashboard/login"))
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name=re.compile("Live conversations"))).to_be_visible()
    await expect(page.locator("#conn")).to_have_text("● live")
    return context, page


async def test_visitor_gets_a_tool_answer_and_the_dashboard_follows_live(
    browser: Browser, stack: Stack, shot
) -> None:
    dash_ctx, dash = await supervisor(browser, stack)
    dash_errors = watch_errors(dash)
    visitor_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        site = await visitor_ctx.new_page()
        site_errors = watch_errors(site)
        frames: list[dict] = []
        site.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: (
                    frames.append(json.loads(payload)) if isinstance(payload, str) else None
                ),
            ),
        )
        await site.goto(stack.host_url)
        await expect(site.get_by_role("heading", name="Acme Outfitters")).to_be_visible()

        # One script tag put a launcher on a page the gateway does not serve.
        await site.get_by_role("button", name="Chat with Ava").click()
        chat = site.get_by_role("dialog", name="Chat with Ava")
        await expect(chat).to_be_visible()
        await expect(chat.get_by_text(GREETING)).to_be_visible()
        box = chat.get_by_label("Your message")
        await expect(box).to_be_focused()

        await box.fill("Hi! Where is my order ORD-1001?")
        await box.press("Enter")
        await expect(chat.locator(".msg.you")).to_have_text(re.compile("ORD-1001"))
        reply = chat.locator(".msg.bot").nth(1)
        await expect(reply).to_contain_text(ORDER_ANSWER, timeout=TURN_TIMEOUT_MS)
        await expect(reply).not_to_have_class(re.compile("pending"))
        await shot(site, "widget-answer-desktop")

        # The reply streamed in: deltas first, then done, and a tool was used for it.
        kinds = [f["type"] for f in frames]
        assert "typing" in kinds and "delta" in kinds and "done" in kinds
        assert kinds.index("delta") < kinds.index("done")
        assert any(f["type"] == "tool" and f.get("name") for f in frames), kinds

        call_id = (await stored_chat(site, stack))["call_id"]
        card = dash.locator(f'article[data-call-id="{call_id}"]')

        # The dashboard (loaded before the chat began, never reloaded) shows the turn live.
        await expect(card).to_be_visible()
        await expect(card.locator(".turn")).to_have_count(1, timeout=TURN_TIMEOUT_MS)
        await expect(card.locator(".turn .u")).to_contain_text("ORD-1001")
        await expect(card.locator(".turn .a")).to_contain_text(ORDER_ANSWER)
        await expect(card).to_have_attribute("data-status", "active")
        await shot(dash, "dashboard-live")

        # The visitor ends the chat; the card shows the end and then the post-call summary.
        await chat.get_by_role("button", name="End chat").click()
        await expect(chat.get_by_text("This conversation has ended.")).to_be_visible()
        await expect(card).to_have_attribute("data-status", "ended", timeout=TURN_TIMEOUT_MS)
        summary = card.locator("[data-summary]")
        await expect(summary).to_be_visible(timeout=SUMMARY_TIMEOUT_MS)
        await expect(summary).to_contain_text(re.compile("Sentiment"))
        await expect(summary).to_contain_text(re.compile(r"satisfaction [1-5]/5"))

        # The plots refresh from the aggregates and now count this conversation and its tool call.
        await expect(dash.locator("[data-kpi=chat] b")).to_have_text(re.compile(r"^[1-9]\d*$"))
        await expect(dash.locator("[data-kpi=satisfaction] b")).to_have_text(re.compile(r"^\d"))
        await expect(dash.locator("#chart-volume svg circle").first).to_be_attached()
        await expect(dash.locator("#chart-latency svg rect").first).to_be_attached()
        await expect(dash.locator("#chart-satisfaction svg rect").first).to_be_attached()
        await expect(dash.locator("#chart-tools svg")).to_contain_text("all tools")
        await shot(dash, "dashboard-summary")

        # Filtering by another channel hides this chat; back to all channels shows it again.
        # (Other tests' calls may share this database: compare with the unfiltered count.)
        channel = dash.locator("#channel")
        calls_kpi = dash.locator("[data-kpi=calls] b")
        await expect(calls_kpi).to_have_text(re.compile(r"^[1-9]\d*$"))
        all_calls = int(await calls_kpi.inner_text())
        await channel.select_option("voice")
        await expect(card).to_be_hidden()
        for _ in range(50):  # the filtered count replaces the total once the aggregates reload
            if int(await calls_kpi.inner_text()) < all_calls:
                break
            await asyncio.sleep(0.1)
        assert int(await calls_kpi.inner_text()) < all_calls
        await channel.select_option("")
        await expect(card).to_be_visible()
        # (the widget may already have opened the visitor's next conversation: at least as many)
        for _ in range(50):
            if int(await calls_kpi.inner_text()) >= all_calls:
                break
            await asyncio.sleep(0.1)
        assert int(await calls_kpi.inner_text()) >= all_calls

        # Call detail: transcript with tool calls, summary, post-call steps.
        await card.get_by_role("link", name=call_id[:12]).click()
        await expect(dash).to_have_url(re.compile(f"/dashboard/calls/{call_id}$"))
        await expect(dash.locator("#transcript .turn")).to_have_count(1, timeout=TURN_TIMEOUT_MS)
        await expect(dash.locator("#transcript")).to_contain_text("ORD-1001")
        await expect(dash.locator("#transcript .tools code").first).to_have_text(re.compile(r"\w+"))
        await expect(dash.locator("#summary [data-summary]")).not_to_be_empty()
        await expect(dash.locator("#steps tbody tr[data-step]").first).to_be_attached(
            timeout=SUMMARY_TIMEOUT_MS
        )
        await shot(dash, "call-detail")

        # The call list finds it by channel.
        await dash.get_by_role("link", name="Calls").click()
        await dash.get_by_label("Channel").select_option("chat")
        await dash.get_by_role("button", name="Apply").click()
        await expect(dash.locator(f'#calls tr[data-call-id="{call_id}"]')).to_be_visible()
        await dash.get_by_label("Channel").select_option("voice")
        await dash.get_by_role("button", name="Apply").click()
        await expect(dash.locator(f'#calls tr[data-call-id="{call_id}"]')).to_have_count(0)
        await dash.get_by_label("Channel").select_option("")
        await dash.get_by_role("button", name="Apply").click()
        await shot(dash, "call-list")
        assert not dash_errors and not site_errors, (dash_errors, site_errors)
    finally:
        await visitor_ctx.close()
        await dash_ctx.close()


async def test_widget_survives_a_dropped_socket_on_a_phone(
    browser: Browser, stack: Stack, shot
) -> None:
    context = await browser.new_context(
        viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def relay(ws: WebSocketRoute) -> None:
        # Pass the socket through untouched; the test can then cut it like a flaky network.
        sockets.append((ws, ws.connect_to_server()))

    try:
        site = await context.new_page()
        await site.route_web_socket(re.compile(r".*/chat/ws.*"), relay)
        await site.goto(stack.host_url)

        # Keyboard only: focus the launcher, Enter opens, Escape closes and gives focus back.
        launcher = site.get_by_role("button", name="Chat with Ava")
        await launcher.focus()
        await site.keyboard.press("Enter")
        chat = site.get_by_role("dialog", name="Chat with Ava")
        box = chat.get_by_label("Your message")
        await expect(box).to_be_focused()
        await site.keyboard.press("Escape")
        await expect(chat).to_be_hidden()
        await expect(launcher).to_be_focused()
        await site.keyboard.press("Enter")
        await expect(box).to_be_focused()

        # Phone width: the panel takes the whole screen.
        panel = await chat.bounding_box()
        assert panel is not None and panel["width"] >= 370 and panel["x"] <= 1
        await expect(chat.locator("[role=log][aria-live=polite]")).to_have_count(1)

        await expect(chat.get_by_text(GREETING)).to_be_visible()
        await site.keyboard.type("Where is ORD-1001?")
        await site.keyboard.press("Enter")
        await expect(chat.locator(".msg.bot").nth(1)).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        first = await stored_chat(site, stack)

        # The network drops the socket; a message typed meanwhile is sent once it is back.
        page_side, server_side = sockets[-1]
        await server_side.close()
        await page_side.close(code=4000, reason="network lost")
        await box.fill("Thanks. Can you check ORD-1001 again?")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot").nth(2)).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        assert len(sockets) >= 2
        assert (await stored_chat(site, stack))["call_id"] == first["call_id"]
        await expect(chat.get_by_text("A new conversation has started.")).to_have_count(0)
        assert await site.evaluate("document.documentElement.scrollWidth <= innerWidth")
        await shot(site, "widget-phone-after-reconnect", full_page=False)

        # A reload keeps the conversation too (same call, same messages).
        shown = await chat.locator(".msg").count()
        await site.reload()
        chat = site.get_by_role("dialog", name="Chat with Ava")
        await expect(chat.locator(".msg")).to_have_count(shown)
        await expect(chat.locator(".status")).to_have_text("Online")
        assert (await stored_chat(site, stack))["call_id"] == first["call_id"]

        # Both turns belong to the one call on the server side.
        async with httpx.AsyncClient(
            base_url=stack.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as api:
            live = (await api.get("/api/live")).json()
        mine = [c for c in live["calls"] if c["call_id"] == first["call_id"]]
        assert mine and mine[0]["status"] == "active"

        # An unhappy ending: the post-call workflow opens a ticket, shown on the call's page.
        box = chat.get_by_label("Your message")
        await box.fill("This is terrible, ORD-1001 is taking forever.")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot")).to_have_count(4, timeout=TURN_TIMEOUT_MS)
        await chat.get_by_role("button", name="End chat").click()
        await expect(chat.get_by_text("This conversation has ended.")).to_be_visible()
        dash_ctx, dash = await supervisor(browser, stack, viewport={"width": 390, "height": 844})
        await dash.goto(f"{stack.base}/dashboard/calls/{first['call_id']}")
        await expect(dash.locator("#tickets [data-ticket]").last).to_be_visible(
            timeout=SUMMARY_TIMEOUT_MS
        )
        await expect(dash.locator("#summary [data-summary]")).not_to_be_empty()
        await expect(dash.locator("#transcript .turn")).to_have_count(3)
        await expect(dash.locator('#steps tr[data-step="ticket"]')).to_contain_text(
            "done", timeout=SUMMARY_TIMEOUT_MS
        )
        # Nothing sticks out sideways at phone width.
        assert await dash.evaluate("document.documentElement.scrollWidth <= innerWidth")
        await shot(dash, "call-detail-ticket-phone")
        await dash_ctx.close()
    finally:
        await context.close()


async def test_chat_continues_across_a_gateway_restart(
    browser: Browser, stack: Stack, shot
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        site = await context.new_page()
        await site.goto(stack.host_url)
        await site.get_by_role("button", name="Chat with Ava").click()
        chat = site.get_by_role("dialog", name="Chat with Ava")
        box = chat.get_by_label("Your message")
        await expect(chat.get_by_text(GREETING)).to_be_visible()
        await box.fill("Where is ORD-1001?")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot").nth(1)).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        before = await stored_chat(site, stack)

        # The gateway is replaced (deploy, crash-restart); the socket drops with it.
        await asyncio.to_thread(stack.restart_gateway)
        await expect(chat.locator(".status")).to_have_text("Online", timeout=TURN_TIMEOUT_MS)
        await box.fill("Thanks! And ORD-1001 once more, please.")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot").nth(2)).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        assert (await stored_chat(site, stack))["call_id"] == before["call_id"]
        await expect(chat.get_by_text("A new conversation has started.")).to_have_count(0)
        await shot(site, "widget-after-gateway-restart", full_page=False)
    finally:
        await context.close()


async def test_dashboard_needs_login(browser: Browser, stack: Stack) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        reply = await page.request.get(stack.base + "/api/live")
        assert reply.status == 401
        await page.goto(stack.base + "/dashboard/calls")
        await expect(page).to_have_url(re.compile(r"/dashboard/login\?next=/dashboard/calls"))
        await page.get_by_label("Admin token").fill("wrong")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not right")
        cookies = await context.cookies()
        assert not any(c["name"] == "cc_admin" for c in cookies)
    finally:
        await context.close()
