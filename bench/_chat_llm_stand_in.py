"""The benches' instant LLM: the OpenAI-compatible stand-in, run in a process of its own.

``python -m bench._chat_llm_stand_in`` prints its base URL on the first line, then serves until
killed. A customer message naming an order (``ORD-…``) gets a ``check_order_status`` call first and
the answer after the tool's result (a tool turn); anything else gets a short text at once (a plain
turn).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from tests.fakes.openai_server import OpenAIStandIn, Reply, ToolCall

ORDER = re.compile(r"ORD-\d+")
ANSWER = "Sure, I can help with that."


def reply(body: dict[str, Any]) -> Reply:
    """A tool call for an order question, then (or otherwise) a short answer."""
    last = body["messages"][-1]
    order = ORDER.search(str(last.get("content") or "")) if last["role"] == "user" else None
    if order and body.get("tools"):
        return Reply(tool_calls=[ToolCall("check_order_status", {"order_id": order.group()})])
    return Reply(text=ANSWER, chunk_chars=16)


def main() -> None:
    """Serve until killed."""
    server = OpenAIStandIn()
    server.default = reply  # type: ignore[assignment]  # a reply factory, called per request
    server.start()
    print(server.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
