"""The skill registry: every skill module registers itself here when it is imported.

A skill is an async function ``run(args, ctx) -> dict`` plus a pydantic model of its arguments;
:func:`skill` turns the pair into a :class:`Skill`, generates its OpenAI function-tool schema from
the model, and adds it to :data:`TOOLS_REGISTRY` and :data:`TOOLS_SCHEMA`.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from callcenter.common.contracts import ToolCallContext


class ToolArguments(BaseModel):
    """Base of every skill's argument model: unknown arguments are a validation error."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CallContext(ToolCallContext):
    """Who is asking (see :class:`ToolCallContext`), and what this deployment trusts about it."""

    #: Whether this channel's caller ID may verify the caller. Set by the executor from config;
    #: whatever a request says here is overwritten.
    caller_id_trusted: bool = False


class ToolError(Exception):
    """A refusal or failure a skill reports on purpose: ``code`` for code, ``message`` for people.

    ``message`` must be plain text that is safe to say to the customer.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


NOT_VERIFIED_MESSAGE = (
    "I need to verify your identity before I can look at or change anything on your account."
)


@dataclass(slots=True)
class SkillContext:
    """What a running skill may use: the database and the caller's context.

    A side-effecting skill runs with ``conn`` set: one connection inside the transaction that
    also records its result, so the effect and the record commit together.
    """

    db: asyncpg.Pool
    call: CallContext
    tool: str = ""
    conn: asyncpg.Connection | None = None

    def bind(self, conn: asyncpg.Connection) -> SkillContext:
        """The same context, running on ``conn``."""
        return replace(self, conn=conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The bound connection, or one from the pool for the duration of the block."""
        if self.conn is not None:
            yield self.conn
        else:
            async with self.db.acquire() as conn:
                yield conn

    @property
    def customer_id(self) -> str | None:
        """The verified customer of this call, if any."""
        return self.call.verified_customer_id or None

    def require_verified(self) -> str:
        """The verified customer id, or a ``not_verified`` refusal.

        Raises:
            ToolError: nobody is verified on this call yet.

        """
        if not self.customer_id:
            raise ToolError("not_verified", NOT_VERIFIED_MESSAGE)
        return self.customer_id

    @property
    def idempotency_key(self) -> str | None:
        """``call_id:tool_call_id`` when both are known (side effects are recorded under it)."""
        if self.call.call_id and self.call.tool_call_id:
            return f"{self.call.call_id}:{self.call.tool_call_id}"
        return None


SkillFunction = Callable[[Any, SkillContext], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class Skill:
    """One tool: its name, argument model, function and generated schema."""

    name: str
    description: str
    arguments: type[ToolArguments]
    run: SkillFunction
    side_effects: bool = False
    schema: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.schema:
            self.schema = tool_schema(self.name, self.description, self.arguments)


TOOLS_REGISTRY: dict[str, Skill] = {}
"""Every registered skill by name."""

TOOLS_SCHEMA: list[dict[str, Any]] = []
"""The OpenAI function-tool schema of every registered skill (what ``tools.list`` answers)."""


def register(entry: Skill) -> Skill:
    """Add ``entry`` to the registry (replacing a skill of the same name).

    Returns:
        The skill, for use as a module constant.

    """
    TOOLS_REGISTRY[entry.name] = entry
    TOOLS_SCHEMA[:] = [s.schema for s in TOOLS_REGISTRY.values()]
    return entry


def skill(
    *,
    name: str,
    description: str,
    arguments: type[ToolArguments],
    side_effects: bool = False,
) -> Callable[[SkillFunction], Skill]:
    """Decorator: turn ``async def run(args, ctx)`` into a registered :class:`Skill`.

    Args:
        name: The tool name the model calls.
        description: What the tool does and when to use it (the model reads this).
        arguments: The pydantic model of its arguments (field descriptions go to the schema).
        side_effects: Whether it changes data; such calls are recorded per
            ``(call_id, tool_call_id)`` and a repeat returns the first result.

    """

    def wrap(fn: SkillFunction) -> Skill:
        return register(
            Skill(
                name=name,
                description=description,
                arguments=arguments,
                run=fn,
                side_effects=side_effects,
            )
        )

    return wrap


def tool_schema(name: str, description: str, arguments: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI function-tool schema for a pydantic argument model (refs inlined, no titles)."""
    raw = arguments.model_json_schema()
    defs = raw.pop("$defs", {})
    parameters = _clean(raw, defs)
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def _clean(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return _clean({**target, **extra}, defs)
        options = node.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
            # ``X | None = None`` becomes plain X: optional because it is not required
            other = next(o for o in options if o != {"type": "null"})
            node = {k: v for k, v in node.items() if k != "anyOf"} | other
            if node.get("default", 0) is None:
                del node["default"]
        # pydantic's generated titles are strings; a property called "title" is a dict and stays
        return {
            k: _clean(v, defs) for k, v in node.items() if not (k == "title" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_clean(v, defs) for v in node]
    return node
