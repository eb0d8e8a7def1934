"""A customer asks for a person in the widget; an agent takes over from the inbox in another browser.

Real chromium, two browser contexts, and two gateway replicas: the customer's widget socket is on
one replica, the agent's inbox page (and its live updates) on the other. The bot stays silent
while the agent owns the conversation and answers again once the agent hands it back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import ADMIN_TOKEN, GATEWAY_ENV, Stack
from tests.browser.test_widget_and_dashboard import (
    TURN_TIMEOUT_MS,
    stored_chat,
    supervisor,
    watch_errors,
)
from tests.support.environment import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.timeout(150)

ORDER_ANSWER = re.compile(r"UPS|1Z999AA10123456784|shipped|in transit|order", re.IGNORECASE)


@pytest.fixture(scope="module")
def agent_replica(stack: Stack, service_factory: Callable[..., ServiceProcess]) -> ServiceProcess:
    """A second gateway replica: the agents' side."""
    return service_factory("gateway", extra_env=GATEWAY_ENV, port=free_port())


async def create_agent(base: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/api/agents", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def test_agent_takes_over_a_chat_from_the_inbox(
    browser: Browser, stack: Stack, agent_replica: ServiceProcess, shot
) -> None:
    assert agent_replica.url != stack.base
    name = "Morgan " + uuid.uuid4().hex[:4]
    token = await create_agent(agent_replica.url, name)

    customer_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    agent_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        # -- the agent logs in to the inbox on the other replica
        desk = await agent_ctx.new_page()
        desk_errors = watch_errors(desk)
        await desk.goto(agent_replica.url + "/dashboard/inbox")
        await expect(desk).to_have_url(re.compile(r"/dashboard/inbox/login"))
        await desk.get_by_label("Agent token").fill(token)
        await desk.get_by_role("button", name="Log in").click()
        await expect(desk.get_by_role("heading", name="Inbox")).to_be_visible()
        await expect(desk.locator("#me")).to_have_text(name)
        await expect(desk.locator("#conn")).to_have_text("● live")

        # -- the customer asks for a human in the widget
        site = await customer_ctx.new_page()
        site_errors = watch_errors(site)
        await site.goto(stack.host_url)
        await site.get_by_role("button", name="Chat with Ava").click()
        chat = site.get_by_role("dialog", name="Chat with Ava")
        box = chat.get_by_label("Your message")
        await box.fill("I want to speak to a human")
        await box.press("Enter")
        await expect(
            chat.locator(".note").filter(has_text="connecting you with a colleague")
        ).to_be_visible(timeout=TURN_TIMEOUT_MS)
        bot_replies = await chat.locator(".msg.bot").count()

        # -- it appears in the inbox (live, without a reload); the agent takes it
        call_id = (await stored_chat(site, stack))["call_id"]
        entry = desk.locator(f'#queue li[data-call="{call_id}"]')  # other tests' may queue too
        await expect(entry).to_have_count(1, timeout=TURN_TIMEOUT_MS)
        await expect(entry).to_contain_text("waiting")
        await entry.get_by_role("button").click()
        await expect(desk.locator("#transcript")).to_contain_text("connecting you with a colleague")
        await desk.get_by_role("button", name="Take conversation").click()
        await expect(
            chat.locator(".note").filter(has_text=f"You're now talking with {name}.")
        ).to_be_visible()
        await expect(chat.locator(".status")).to_have_text(f"Talking with {name}")
        await shot(desk, "inbox-taken")

        # -- the agent replies; the customer sees it marked as from a person
        reply_box = desk.get_by_label("Reply to the customer")
        await reply_box.fill("Hi, this is Morgan. How can I help?")
        await reply_box.press("Enter")
        agent_msg = chat.locator(".msg.agent")
        await expect(agent_msg).to_have_count(1)
        await expect(agent_msg).to_contain_text("Hi, this is Morgan. How can I help?")
        await expect(agent_msg.locator(".who")).to_have_text(f"{name} · agent")

        # -- the customer answers: the agent sees it, the bot stays silent
        await box.fill("My parcel never arrived")
        await box.press("Enter")
        await expect(
            desk.locator("#transcript .entry.customer").filter(has_text="My parcel never arrived")
        ).to_be_visible()
        await expect(chat.locator(".typing")).to_be_hidden()
        assert await chat.locator(".msg.bot").count() == bot_replies
        await shot(site, "widget-agent")

        # -- the agent hands back; the bot answers again
        await desk.get_by_role("button", name="Hand back to the bot").click()
        await expect(
            chat.locator(".note").filter(has_text=f"{name} has left the conversation.")
        ).to_be_visible()
        await box.fill("Where is my order ORD-1001?")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot")).to_have_count(
            bot_replies + 1, timeout=TURN_TIMEOUT_MS
        )
        await expect(chat.locator(".msg.bot").last).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        await shot(site, "widget-back-to-bot")
        assert not desk_errors and not site_errors, (desk_errors, site_errors)
    finally:
        await customer_ctx.close()
        await agent_ctx.close()


async def test_supervisor_takes_over_from_the_live_view(
    browser: Browser, stack: Stack, agent_replica: ServiceProcess
) -> None:
    dash_ctx, dash = await supervisor(browser, stack)
    customer_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        site = await customer_ctx.new_page()
        await site.goto(stack.host_url)
        await site.get_by_role("button", name="Chat with Ava").click()
        chat = site.get_by_role("dialog", name="Chat with Ava")
        box = chat.get_by_label("Your message")
        await box.fill("Where is my order ORD-1001?")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot").nth(1)).to_contain_text(
            ORDER_ANSWER, timeout=TURN_TIMEOUT_MS
        )
        call_id = (await stored_chat(site, stack))["call_id"]

        card = dash.locator(f'article[data-call-id="{call_id}"]')
        await card.get_by_role("link", name="Take over").click()
        await expect(dash.locator("#conv-meta")).to_contain_text("State: with Supervisor")
        await expect(
            chat.locator(".note").filter(has_text="You're now talking with Supervisor.")
        ).to_be_visible()
        await dash.get_by_label("Reply to the customer").fill("A supervisor here, checking in.")
        await dash.get_by_role("button", name="Send").click()
        await expect(chat.locator(".msg.agent")).to_contain_text("A supervisor here, checking in.")
    finally:
        await customer_ctx.close()
        await dash_ctx.close()
