"""Starting the system for an eval the way ``make run`` does, when none is running."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time

import httpx

from callcenter.common.config import CallCenterConfig

#: the services a chat or SMS scenario goes through (the voice pipeline is not needed)
SERVICES = ["tools", "conversation", "post_call", "gateway"]


def gateway_url(config: CallCenterConfig) -> str:
    """Where the gateway listens."""
    host = config.gateway.host
    host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    return f"http://{host}:{config.gateway.port}"


async def is_ready(url: str) -> bool:
    """Whether the gateway at ``url`` answers /readyz."""
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url + "/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


class LocalSystem:
    """``callcenter up`` for the eval's services, with a Twilio token so SMS webhooks can be signed."""

    def __init__(self, *, config: CallCenterConfig, log_dir: str = ".run/logs") -> None:
        self.config = config
        self.log_dir = log_dir
        self.auth_token = (
            config.twilio.auth_token.get_secret_value()
            if config.twilio.auth_token
            else secrets.token_hex(16)
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *, timeout_s: float = 180.0) -> None:
        """Start the services and wait until the gateway is ready.

        Raises:
            RuntimeError: ``callcenter up`` exited or the gateway never became ready.

        """
        env = {
            **os.environ,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            # the webhook's whole budget, so every SMS reply comes back in its TwiML
            "CALLCENTER_GATEWAY__SMS_REPLY_BUDGET_S": "14",
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter.common.cli", "up", "--log-dir", self.log_dir,
            "--only", *SERVICES, env=env, start_new_session=True,
        )  # fmt: skip
        url = gateway_url(self.config)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"callcenter up exited ({self.process.returncode})")
            if await is_ready(url):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the gateway at {url} was not ready within {timeout_s:.0f} s")

    async def stop(self) -> None:
        """Stop every service (as Ctrl-C on ``make run`` does)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
