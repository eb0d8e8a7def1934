"""Caught mail and dead-letter replay (issue 15), behind the admin token.

- ``GET /api/mail``: what the local mail catcher received (``caught_mail``), newest first;
- ``POST /api/dead-letters/{id}/replay``: publish the dead-lettered event again.

A replay republishes the stored event unchanged (same ``event_id``) under a new ``Nats-Msg-Id``
(``replay-<id>-<n>``), so JetStream's duplicate window does not swallow it. Every post-call step
records ``(step, event_id)`` with its effect, so steps that already handled the event only ack,
and the step that gave up runs again: the replay can never make a second email or ticket.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from callcenter.common.logging import get_logger
from callcenter.gateway.auth import require_admin
from callcenter.gateway.deps import GatewayDeps, request_deps

log = get_logger(__name__)

router = APIRouter(
    prefix="/api", tags=["mail and dead letters"], dependencies=[Depends(require_admin)]
)
Deps = Annotated[GatewayDeps, Depends(request_deps)]


class CaughtMail(BaseModel):
    """One message the local mail catcher received."""

    id: int
    mail_from: str
    rcpt_to: list[str]
    subject: str
    body_text: str
    received_at: datetime


class CaughtMailPage(BaseModel):
    """Caught mail, newest first."""

    items: list[CaughtMail]
    total: int


class Replay(BaseModel):
    """A dead letter published again."""

    id: int
    subject: str
    event_id: str | None
    replay_count: int
    replayed_at: datetime


@router.get("/mail", response_model=CaughtMailPage, summary="Mail caught by the local catcher")
async def caught_mail(
    deps: Deps,
    to: Annotated[str | None, Query(max_length=254, description="a recipient address")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CaughtMailPage:
    """Newest first; empty when no catcher ran (the table exists from the first migration)."""
    where = "WHERE $1::text IS NULL OR lower($1) = ANY (SELECT lower(r) FROM unnest(rcpt_to) r)"
    rows = await deps.db.fetch(
        f"SELECT id, mail_from, rcpt_to, subject, body_text, received_at FROM caught_mail {where} "
        "ORDER BY id DESC LIMIT $2 OFFSET $3",
        to,
        limit,
        offset,
    )
    total = await deps.db.fetchval(f"SELECT count(*) FROM caught_mail {where}", to)
    return CaughtMailPage(items=[CaughtMail(**dict(r)) for r in rows], total=int(total))


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, dict):
        return json.dumps(payload).encode()
    raise HTTPException(
        409, "this dead letter's payload is not a JSON event; it cannot be replayed"
    )


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=Replay,
    summary="Publish a dead-lettered event again",
)
async def replay_dead_letter(dead_letter_id: int, deps: Deps) -> Replay:
    """Republish the event; steps that already handled it do nothing (exactly once)."""
    row = await deps.db.fetchrow(
        "SELECT id, subject, event_id, call_id, payload, replay_count FROM dead_letters "
        "WHERE id = $1",
        dead_letter_id,
    )
    if row is None:
        raise HTTPException(404, "no such dead letter")
    payload = row["payload"]
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    data = _payload_bytes(payload)
    count = int(row["replay_count"]) + 1
    headers = {"Nats-Msg-Id": f"replay-{row['id']}-{count}"}
    if row["call_id"]:
        headers["Cc-Call-Id"] = row["call_id"]
    await deps.bus.js.publish(deps.bus.subject(row["subject"]), data, headers=headers)
    updated = await deps.db.fetchrow(
        "UPDATE dead_letters SET replay_count = $2, replayed_at = now() WHERE id = $1 "
        "RETURNING replay_count, replayed_at",
        dead_letter_id,
        count,
    )
    log.info("dead letter replayed", dead_letter=dead_letter_id, subject=row["subject"])
    return Replay(
        id=row["id"],
        subject=row["subject"],
        event_id=row["event_id"],
        replay_count=updated["replay_count"],
        replayed_at=updated["replayed_at"],
    )
