"""What every request/reply contract shares: a schema version and JSON on the wire.

Versioned like the events: ``schema_version`` is 1 until a breaking change bumps it; unknown
fields from a newer peer are ignored, and a message with a newer version than this code knows is
refused (it would be misread).
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, field_validator


class Contract(BaseModel):
    """Base of the request/reply models."""

    model_config = ConfigDict(extra="ignore")

    #: the newest version this code reads and writes
    current_version: ClassVar[int] = 1

    schema_version: int = 1

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value < 1 or value > cls.current_version:
            raise ValueError(
                f"schema_version {value} is not supported (this side reads 1..{cls.current_version})"
            )
        return value

    def to_bytes(self) -> bytes:
        """Serialise as JSON for the wire."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Self:
        """Parse from the wire; raises ``pydantic.ValidationError`` (a ``ValueError``) when invalid."""
        return cls.model_validate_json(data)
