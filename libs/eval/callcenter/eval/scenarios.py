"""The scenario file format: scripted customers, what they say, and what must be true afterwards.

A scenario file is a YAML list of scenarios (see ``eval/scenarios/README.md``). Text may name the
customer's fixture with ``{placeholders}`` (``{shipped}``, ``{zip}``, ``{other_order}`` …); they are
filled in per run, so every run starts from fresh orders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ScenarioError(ValueError):
    """A scenario file that cannot be read, with the file and the reason."""


class Strict(BaseModel):
    """A model that refuses unknown keys, so a typo in a scenario is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Turn(Strict):
    """One customer message and what the reply to it must (not) contain."""

    say: str = Field(min_length=1)
    #: end the conversation so far and say this in a new one (same customer, same channel)
    new_conversation: bool = False
    #: each entry must appear in the reply; ``a | b`` accepts either (case-insensitive)
    reply_has: list[str] = Field(default_factory=list)
    #: none of these may appear in the reply
    reply_lacks: list[str] = Field(default_factory=list)

    _as_list = field_validator("reply_has", "reply_lacks", mode="before")(_listed)


class EndState(Strict):
    """What PostgreSQL (and the conversation record) must show after the last turn.

    Order keys are fixture placeholders without braces (``pending``, ``other_order`` …).
    """

    #: order -> status it must have (``pending``, ``cancelled`` …)
    orders: dict[str, str] = Field(default_factory=dict)
    #: order -> how many returns were started for it
    returns: dict[str, int] = Field(default_factory=dict)
    #: order -> how many exchanges were set up for it
    exchanges: dict[str, int] = Field(default_factory=dict)
    #: order -> text its shipping address must contain
    address: dict[str, str] = Field(default_factory=dict)
    #: tickets opened in this conversation (None: not checked)
    tickets: int | None = Field(default=None, ge=0)
    #: callbacks scheduled in this conversation
    callbacks: int | None = Field(default=None, ge=0)
    #: whether the customer ended up verified in this conversation
    verified: bool | None = None
    #: whether the conversation was handed to a person (transfer or queued for an agent)
    handoff: bool | None = None
    #: whether it is waiting in the agent inbox (calls.status; the inbox, issue 14)
    queued: bool | None = None
    #: whether the conversation record names the verified customer (calls.customer_id, issue 15)
    customer_recorded: bool | None = None


class Scenario(Strict):
    """One scripted customer."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    category: str = Field(min_length=1)
    channel: Literal["chat", "sms", "voice"] = "chat"
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    #: content no reply in the conversation may contain
    never_say: list[str] = Field(default_factory=list)
    expect: EndState = Field(default_factory=EndState)
    source: str = ""

    _as_list = field_validator("never_say", "tags", mode="before")(_listed)


def load_file(path: Path) -> list[Scenario]:
    """The scenarios of one YAML file.

    Raises:
        ScenarioError: the file is not YAML, not a list, or a scenario is malformed.

    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ScenarioError(f"{path}: expected a list of scenarios, got {type(raw).__name__}")
    scenarios = []
    for index, entry in enumerate(raw):
        try:
            scenario = Scenario.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("id") if isinstance(entry, dict) else None
            raise ScenarioError(f"{path}: scenario #{index + 1} ({name or '?'}): {exc}") from exc
        scenarios.append(scenario.model_copy(update={"source": path.name}))
    return scenarios


def load(paths: list[Path]) -> list[Scenario]:
    """Every scenario under ``paths`` (files or folders of ``*.yaml``), ids unique.

    Raises:
        ScenarioError: a file is malformed or two scenarios share an id.

    """
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for file in files:
        for scenario in load_file(file):
            if scenario.id in seen:
                raise ScenarioError(
                    f"{file}: scenario id {scenario.id!r} is also in {seen[scenario.id]}"
                )
            seen[scenario.id] = file.name
            scenarios.append(scenario)
    return scenarios


def select(
    scenarios: list[Scenario],
    *,
    only: list[str] | None = None,
    tags: list[str] | None = None,
    skip_tags: list[str] | None = None,
) -> list[Scenario]:
    """Scenarios by id prefix (``only``), required ``tags`` and excluded ``skip_tags``."""
    out = [s for s in scenarios if not set(skip_tags or ()) & set(s.tags)]
    if only:
        out = [s for s in out if any(s.id.startswith(prefix) for prefix in only)]
    if tags:
        out = [s for s in out if all(t in s.tags or t == s.category for t in tags)]
    return out
