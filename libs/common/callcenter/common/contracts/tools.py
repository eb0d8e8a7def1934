"""``tools.list`` and ``tools.call``: the skills the assistant may use, and one call of one skill.

A :class:`ToolCallRequest` carries the arguments already parsed (the conversation service parses
the model's JSON once) and the caller's :class:`ToolCallContext`, which the conversation service
sets from its session, never from the model. The reply is always a :class:`ToolOutcome`:
``{"success": true, "data": {...}}`` or ``{"success": false, "error": code, "message": text}`` where
``message`` is plain text safe to say to the customer.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.common.contracts.base import Contract


class ToolCallContext(BaseModel):
    """Who is asking: set by the conversation service from its session, never by the model."""

    model_config = ConfigDict(extra="ignore")

    call_id: str = ""
    channel: str = ""
    tool_call_id: str = ""
    verified_customer_id: str | None = None
    caller_number: str | None = None


class ToolCallRequest(Contract):
    """Run the tool ``name`` with ``arguments`` for the caller in ``context``."""

    name: str = Field(min_length=1, max_length=200)
    arguments: dict[str, Any] = Field(default_factory=dict)
    context: ToolCallContext = Field(default_factory=ToolCallContext)


class ToolOutcome(Contract):
    """The reply of one tool call."""

    success: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    message: str | None = None

    @classmethod
    def ok(cls, data: dict[str, Any]) -> ToolOutcome:
        """A successful outcome."""
        return cls(success=True, data=data)

    @classmethod
    def failure(cls, error: str, message: str) -> ToolOutcome:
        """A failed outcome (``message`` is said to the customer)."""
        return cls(success=False, error=error, message=message)

    def as_reply(self) -> dict[str, Any]:
        """The result as the model (and the wire) sees it: only the fields of its shape."""
        if self.success:
            return {"success": True, "data": self.data}
        return {"success": False, "error": self.error, "message": self.message}

    def to_bytes(self) -> bytes:
        """Serialise as JSON for the wire: exactly the reply shape.

        ``schema_version`` is written only when it is not 1 (absent means 1), so the shape the
        model sees and the shape on the wire stay the same. A skill's data may hold dates or
        decimals: they are written as strings.
        """
        reply = self.as_reply()
        if self.schema_version != 1:
            reply["schema_version"] = self.schema_version
        return json.dumps(reply, default=str).encode()


class ToolsList(Contract):
    """The tools schema: OpenAI function tools."""

    tools: list[dict[str, Any]] = Field(default_factory=list)

    def to_bytes(self) -> bytes:
        """Serialise as JSON for the wire (``schema_version`` only when it is not 1)."""
        body: dict[str, Any] = {"tools": self.tools}
        if self.schema_version != 1:
            body["schema_version"] = self.schema_version
        return json.dumps(body).encode()
