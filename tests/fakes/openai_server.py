"""A local stand-in for an OpenAI-compatible chat completions server.

It speaks the real wire protocol (``POST /v1/chat/completions``, JSON or SSE streaming with
``chat.completion.chunk`` objects, tool calls streamed in argument fragments), so the real client
library (litellm, through the openai SDK) talks to it over real HTTP. Each test scripts what each
model answers, in order, and afterwards reads what the server received.

    server = OpenAIStandIn().start()
    server.script("primary", Reply(tool_calls=[ToolCall("check_order_status", {"order_id": "ORD-1"})]),
                  Reply(text="It shipped."))
    # config: model "openai/primary", api_base=server.base_url, api_key="sk-test"
    ...
    server.requests_for("primary")[1]["messages"]  # what the model saw on its second call

A reply can also be an HTTP error (``Reply(status=500)``), a hang (``Reply(hang_s=10)``: nothing is
sent until the time is up or the server stops), or a callable that builds the reply from the
request body. With nothing scripted the server answers ``default`` (an instant short text).

Like the real API it refuses, before any script is used, what OpenAI refuses
(https://platform.openai.com/docs/api-reference/chat/create, and the error shape of
https://platform.openai.com/docs/guides/error-codes): a request without ``Authorization: Bearer``
or, when the stand-in has an ``api_key``, with another key (401); and with 400
``invalid_request_error`` a body without ``model`` or ``messages``, an unknown role, a user or
system message without content, an assistant message with neither content nor tool calls, a
``tool`` message that does not answer a tool call id of the assistant message before it, an
assistant tool call left without its ``tool`` answer, and a tool whose name breaks
``^[a-zA-Z0-9_-]{1,64}$`` or whose ``parameters`` is not a JSON Schema of an object. Refused
requests are kept in :attr:`OpenAIStandIn.refused`. What it cannot check is everything a model
would judge (whether arguments fit the schema, context length).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tests.fakes.threaded_http import StandInHTTPServer, ThreadedHTTPStandIn

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class InvalidRequest(Exception):
    """A request OpenAI answers with 400 ``invalid_request_error``."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


def _has_content(content: Any) -> bool:
    return (isinstance(content, str) and content != "") or (
        isinstance(content, list) and len(content) > 0
    )


def validate_request(body: dict[str, Any]) -> None:
    """Raise :class:`InvalidRequest` for what the chat completions API refuses with 400."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", "messages")
    open_calls: list[str] = []  # tool call ids of the last assistant message still unanswered
    answerable: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidRequest(f"Invalid value for 'messages[{i}].role'", f"messages.[{i}].role")
        role = message["role"]
        if open_calls and role != "tool":
            raise InvalidRequest(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_calls)}",
                f"messages.[{i}].role",
            )
        if role in {"system", "developer", "user"} and not _has_content(message.get("content")):
            raise InvalidRequest(
                f"Invalid 'messages[{i}].content': expected a string or an array of content "
                "parts, got none or an empty one.",
                f"messages.[{i}].content",
            )
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if not calls and message.get("content") is None and not message.get("function_call"):
                raise InvalidRequest(
                    f"Invalid 'messages[{i}]': an assistant message needs 'content' or "
                    "'tool_calls'.",
                    f"messages.[{i}].content",
                )
            ids = [str(c.get("id")) for c in calls if isinstance(c, dict)]
            if len(ids) != len(calls) or not all(ids):
                raise InvalidRequest(
                    f"Missing required parameter: 'messages[{i}].tool_calls[].id'.",
                    f"messages.[{i}].tool_calls",
                )
            open_calls, answerable = list(ids), set(ids)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in answerable:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if "content" not in message or message["content"] is None:
                raise InvalidRequest(
                    f"Missing required parameter: 'messages[{i}].content'.",
                    f"messages.[{i}].content",
                )
            open_calls = [c for c in open_calls if c != call_id]
        else:
            answerable = set()
    if open_calls:
        raise InvalidRequest(
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response "
            f"messages: {', '.join(open_calls)}",
            "messages",
        )
    for i, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise InvalidRequest(f"Invalid 'tools[{i}]': expected a function tool.", f"tools[{i}]")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise InvalidRequest(
                f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a "
                "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{i}].function.name",
                "invalid_value",
            )
        schema = function.get("parameters", {"type": "object", "properties": {}})
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise InvalidRequest(
                f"Invalid schema for function '{name}': {exc.message}",
                f"tools[{i}].function.parameters",
                "invalid_function_parameters",
            ) from exc
        if schema.get("type") != "object":
            raise InvalidRequest(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{schema.get('type')}\"'.",
                f"tools[{i}].function.parameters",
                "invalid_function_parameters",
            )


@dataclass
class ToolCall:
    """A tool call the scripted model makes."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:12])

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted answer: text and/or tool calls, or an HTTP error, or a hang."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200
    error_body: dict[str, Any] | None = None
    hang_s: float = 0.0
    chunk_chars: int = 8
    delay_between_chunks_s: float = 0.0
    break_after_chunks: int | None = None


ReplyFactory = Callable[[dict[str, Any]], Reply]


class OpenAIStandIn(ThreadedHTTPStandIn):
    """The server; start it once per test module and script it per test."""

    thread_name = "openai-stand-in"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None
    ) -> None:
        super().__init__(host=host, port=port)
        #: the one key accepted; None accepts any bearer token (a local server without a key)
        self.api_key = api_key
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply | ReplyFactory]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.default: Reply | ReplyFactory = Reply(text="Okay.")
        self._stopping = threading.Event()

    # -- control -------------------------------------------------------------------------

    def start(self) -> OpenAIStandIn:
        stand_in = self

        class Handler(_Handler):
            server_state = stand_in

        self._serve(Handler)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._shutdown()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def script(self, model: str, *replies: Reply | ReplyFactory) -> None:
        """Queue what ``model`` answers to its next requests, in order."""
        with self._lock:
            self._scripts[model].extend(replies)

    def reset(self) -> None:
        """Forget scripts and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.refused.clear()

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        """The request bodies ``model`` received, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.get("model") == model]

    def pending(self, model: str) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._scripts[model])

    # -- used by the handler -------------------------------------------------------------

    def _refusal(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any] | None:
        """The 401 or 400 OpenAI would answer ``body`` with, or None."""
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        error: tuple[int, dict[str, Any]] | None = None
        if not token:
            error = (401, _auth_error("You didn't provide an API key.", None))
        elif self.api_key is not None and token != self.api_key:
            error = (401, _auth_error("Incorrect API key provided.", "invalid_api_key"))
        else:
            try:
                validate_request(body)
            except InvalidRequest as exc:
                error = (400, exc.body())
        if error is not None:
            with self._lock:
                self.refused.append((error[0], body))
        return error

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            queue = self._scripts.get(str(body.get("model")))
            item = queue.popleft() if queue else self.default
        return item(body) if callable(item) else item


class _QuietServer(StandInHTTPServer):
    """A client that hangs up mid-stream (a cancelled turn, a timeout) is not an error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_state: OpenAIStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": []})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, InvalidRequest("We could not parse the JSON body.").body())
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        state = self.server_state
        refusal = state._refusal(headers, body)
        if refusal is not None:
            self._json(*refusal)
            return
        body["_headers"] = headers
        reply = state._next_reply(body)
        if reply.hang_s:
            state._stopping.wait(reply.hang_s)
        if reply.status != 200:
            error = reply.error_body or {
                "error": {
                    "message": f"scripted failure {reply.status}",
                    "type": "server_error",
                    "code": None,
                }
            }
            self._json(reply.status, error)
            return
        model = str(body.get("model"))
        if body.get("stream"):
            self._stream(model, reply, body)
        else:
            self._json(200, _completion(model, reply))

    # -- responses -----------------------------------------------------------------------

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stream(self, model: str, reply: Reply, body: dict[str, Any]) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            for chunk in _chunks(model, reply):
                if reply.break_after_chunks is not None and sent >= reply.break_after_chunks:
                    self.close_connection = True
                    self.wfile.flush()
                    return  # the connection drops mid-stream
                self._event(json.dumps(chunk))
                sent += 1
                if reply.delay_between_chunks_s:
                    time.sleep(reply.delay_between_chunks_s)
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event(json.dumps(_usage_chunk(model, body)))
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()


def _auth_error(message: str, code: str | None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _base(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:16],
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "stand-in",
    }


def _chunks(model: str, reply: Reply) -> list[dict[str, Any]]:
    base = _base(model)
    out: list[dict[str, Any]] = []

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    out.append(choice({"role": "assistant", "content": ""}))
    text = reply.text
    step = max(reply.chunk_chars, 1)
    for start in range(0, len(text), step):
        out.append(choice({"content": text[start : start + step]}))
    for index, call in enumerate(reply.tool_calls):
        out.append(
            choice(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        args = call.arguments_json()
        for start in range(0, len(args), 7):  # arguments arrive in fragments, as OpenAI sends them
            out.append(
                choice(
                    {
                        "tool_calls": [
                            {"index": index, "function": {"arguments": args[start : start + 7]}}
                        ]
                    }
                )
            )
    out.append(choice({}, "tool_calls" if reply.tool_calls else "stop"))
    return out


def _usage_chunk(model: str, body: dict[str, Any]) -> dict[str, Any]:
    prompt = sum(len(json.dumps(m)) for m in body.get("messages", [])) // 4
    return {
        **_base(model),
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 8, "total_tokens": prompt + 8},
    }


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:16],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18},
    }


def main() -> None:
    """``python -m tests.fakes.openai_server [--port N] [--text T]``: serve until killed.

    Answers every request with ``--text`` at once (an instant model, for benchmarks). Prints the
    base URL on the first line of standard output.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--text", default="Okay, that's done.")
    args = parser.parse_args()
    server = OpenAIStandIn(port=args.port)
    server.default = Reply(text=args.text, chunk_chars=16)
    server.start()
    print(server.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()


OpenAIStandIn.server_class = _QuietServer
