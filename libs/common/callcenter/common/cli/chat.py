"""``callcenter chat``: talk to a running system over the web-chat WebSocket."""

from __future__ import annotations

import argparse
import asyncio
import sys

import websockets

from callcenter.common.config import load_config
from callcenter.common.contracts.chat import (
    ChatEnd,
    ChatMessage,
    DeltaFrame,
    DoneFrame,
    EndedFrame,
    ErrorFrame,
    SessionFrame,
    parse_chat_frame,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``chat`` command."""
    parser = sub.add_parser("chat", help="chat with the assistant from the terminal")
    parser.add_argument("--url", help="chat WebSocket URL (default: the gateway's /chat/ws)")
    parser.add_argument(
        "-m", "--message", action="append", help="send this message and exit (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply")
    parser.set_defaults(func=_chat)


def _default_url() -> str:
    base = load_config().gateway.public_base_url.rstrip("/")
    return base.replace("https://", "wss://").replace("http://", "ws://") + "/chat/ws"


async def _reply(ws: websockets.ClientConnection, timeout: float) -> tuple[str, bool]:
    """Print the streamed reply; return its text and whether the conversation ended."""
    text = []
    while True:
        frame = parse_chat_frame(await asyncio.wait_for(ws.recv(), timeout=timeout))
        if isinstance(frame, DeltaFrame):
            sys.stdout.write(frame.text)
            sys.stdout.flush()
            text.append(frame.text)
        elif isinstance(frame, DoneFrame):
            sys.stdout.write("\n")
            return "".join(text), frame.end_call
        elif isinstance(frame, ErrorFrame):
            sys.stdout.write(f"\n[error] {frame.message}\n")
            return "", False
        elif isinstance(frame, EndedFrame):
            return "".join(text), True


async def _session(url: str, messages: list[str] | None, timeout: float) -> int:
    async with websockets.connect(url, open_timeout=timeout) as ws:
        hello = parse_chat_frame(await asyncio.wait_for(ws.recv(), timeout=timeout))
        if not isinstance(hello, SessionFrame):
            print(f"[the chat did not start a conversation: {hello.to_text()}]", file=sys.stderr)
            return 1
        print(f"[connected: conversation {hello.call_id}]")
        if hello.greeting:
            print(f"assistant> {hello.greeting}")
        queue = list(messages) if messages else None
        loop = asyncio.get_running_loop()
        while True:
            if queue is not None:
                if not queue:
                    break
                line = queue.pop(0)
                print(f"you> {line}")
            else:
                line = await loop.run_in_executor(None, lambda: input("you> "))
                if line.strip() in {"/quit", "/exit"}:
                    break
                if not line.strip():
                    continue
            await ws.send(ChatMessage(text=line).to_text())
            sys.stdout.write("assistant> ")
            _, ended = await _reply(ws, timeout)
            if ended:
                print("[conversation ended]")
                return 0
        await ws.send(ChatEnd().to_text())
    return 0


def _chat(args: argparse.Namespace) -> int:
    url = args.url or _default_url()
    try:
        return asyncio.run(_session(url, args.message, args.timeout))
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        print(
            f"cannot reach the chat at {url}: {exc}. Is the system running (`make run`)?",
            file=sys.stderr,
        )
        return 1
    except (EOFError, KeyboardInterrupt):
        return 0
