"""Supervisor dashboard: login, pages, live updates (SSE) and the aggregates behind its plots.

Pages (``/dashboard``, ``/dashboard/calls``, ``/dashboard/calls/{call_id}``) are static HTML + plain
JS under ``static/dashboard/`` that read the same JSON as any API client: ``/api/calls…`` (the REST
API) and the endpoints here, all behind :func:`callcenter.gateway.auth.require_admin`:

- ``GET /api/live``: calls open now or ended in the last minutes, with their stored turns and
  summaries (the snapshot the live view starts from);
- ``GET /api/live/events``: Server-Sent Events from the bus (``call.started``, ``turn.completed``,
  ``call.ended``, ``call.summarized``; see :mod:`callcenter.gateway.live`);
- ``GET /api/stats/volume``: calls per channel per time bucket;
- ``GET /api/stats/latency``: per-stage turn latency percentiles (from ``turns.latency``);
- ``GET /api/stats/satisfaction``: satisfaction 1–5 and sentiment counts (from ``summaries``);
- ``GET /api/stats/tools``: tool calls and failures per tool (from ``turns.tool_calls``).

The turns and summaries tables belong to post_call: they are read through its query module,
:mod:`callcenter.common.queries.post_call`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from callcenter.common.logging import get_logger
from callcenter.common.queries import post_call
from callcenter.gateway.auth import (
    clear_session_cookie,
    is_admin,
    require_admin,
    set_session_cookie,
    token_matches,
)
from callcenter.gateway.deps import GatewayDeps, request_deps
from callcenter.gateway.live import LiveHub, sse_stream

log = get_logger(__name__)

PAGES = Path(__file__).resolve().parent.parent / "static" / "dashboard"
LATENCY_STAGES = (
    "stt_final_ms",
    "first_token_ms",
    "tool_ms",
    "first_audio_ms",
    "first_audio_sent_ms",
    "total_ms",
)
RECENT_ENDED_MIN = 15
LOGIN_MAX_FAILURES = 10
LOGIN_WINDOW_S = 300
ChannelFilter = Literal["voice", "sms", "chat", "web_voice"] | None
Deps = Annotated[GatewayDeps, Depends(request_deps)]
Hours = Annotated[float, Query(gt=0, le=24 * 90, description="how far back to look")]

router = APIRouter()
data = APIRouter(prefix="/api", tags=["dashboard"], dependencies=[Depends(require_admin)])


# --- login and pages ------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"


def _login_page(*, next_path: str, error: str | None, status_code: int = 200) -> HTMLResponse:
    template = (PAGES / "login.html").read_text()
    notice = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = template.replace("{{next}}", html.escape(next_path, quote=True)).replace(
        "{{notice}}", notice
    )
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/login", include_in_schema=False)
async def login_form(request: Request, next: str | None = None) -> Response:
    """The login form (or straight on when already logged in)."""
    if is_admin(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    configured = request.app.state.deps.config.gateway.admin_token is not None
    return _login_page(
        next_path=_safe_next(next),
        error=None if configured else "No admin token is configured; set ADMIN_TOKEN.",
    )


@router.post("/dashboard/login", include_in_schema=False)
async def login(
    request: Request, token: str = Form(""), next: str = Form("/dashboard")
) -> Response:
    """Check the token; on success set the session cookie and go on.

    After :data:`LOGIN_MAX_FAILURES` wrong tokens from one client address within
    :data:`LOGIN_WINDOW_S`, every attempt from it is refused (429) until the window passes.
    """
    deps: GatewayDeps = request.app.state.deps
    client = request.client.host if request.client else "unknown"
    failures_key = deps.key(f"dashboard:login_failures:{client}")
    if int(await deps.redis.get(failures_key) or 0) >= LOGIN_MAX_FAILURES:
        return _login_page(
            next_path=_safe_next(next),
            error="Too many wrong tokens; try again in a few minutes.",
            status_code=429,
        )
    if not token_matches(request, token):
        failures = await deps.redis.incr(failures_key)
        if failures == 1:
            await deps.redis.expire(failures_key, LOGIN_WINDOW_S)
        log.warning("dashboard login refused", client=client, failures=failures)
        return _login_page(
            next_path=_safe_next(next), error="That token is not right.", status_code=401
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response)
    return response


@router.post("/dashboard/logout", include_in_schema=False)
async def logout() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/dashboard/login", status_code=303)
    clear_session_cookie(response)
    return response


@dataclass(frozen=True, slots=True)
class Page:
    """A dashboard page: its content fragment, title, nav entry and scripts."""

    fragment: str
    title: str
    nav: str
    scripts: tuple[str, ...]


PAGE_SPECS = {
    "live": Page(
        fragment="index.html", title="Live", nav="live", scripts=("charts.js", "overview.js")
    ),
    "calls": Page(fragment="calls.html", title="Calls", nav="calls", scripts=("calls.js",)),
    "call": Page(fragment="call.html", title="Call", nav="calls", scripts=("call.js",)),
    # issue 15: caught mail and dead letters
    "mail": Page(fragment="mail.html", title="Mail", nav="mail", scripts=("mail.js",)),
    "dead_letters": Page(
        fragment="dead_letters.html",
        title="Dead letters",
        nav="dead_letters",
        scripts=("dead_letters.js",),
    ),  # fmt: skip
}
NAV = (
    ("live", "/dashboard", "Live"),
    ("calls", "/dashboard/calls", "Calls"),
    ("mail", "/dashboard/mail", "Mail"),
    ("dead_letters", "/dashboard/dead-letters", "Dead letters"),
)


@cache
def _render(name: str) -> str:
    """The page's fragment inside the shared layout (header, navigation, common script)."""
    page = PAGE_SPECS[name]
    current = ' aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current if key == page.nav else ""}>{label}</a>'
        for key, href, label in NAV
    )
    scripts = "\n".join(f'<script src="/static/dashboard/{js}"></script>' for js in page.scripts)
    return (
        (PAGES / "layout.html")
        .read_text()
        .replace("{{title}}", page.title)
        .replace("{{nav}}", nav)
        .replace("{{content}}", (PAGES / page.fragment).read_text())
        .replace("{{scripts}}", scripts)
    )


def _page(request: Request, name: str) -> Response:
    if not is_admin(request):
        return RedirectResponse(f"/dashboard/login?next={request.url.path}", status_code=303)
    return HTMLResponse(_render(name), headers={"Cache-Control": "no-store"})


@router.get("/dashboard", include_in_schema=False)
async def overview_page(request: Request) -> Response:
    """Live conversations and the plots."""
    return _page(request, "live")


@router.get("/dashboard/calls", include_in_schema=False)
async def calls_page(request: Request) -> Response:
    """The call list with filters."""
    return _page(request, "calls")


@router.get("/dashboard/mail", include_in_schema=False)
async def mail_page(request: Request) -> Response:
    """Mail the local catcher received (what customers would get)."""
    return _page(request, "mail")


@router.get("/dashboard/dead-letters", include_in_schema=False)
async def dead_letters_page(request: Request) -> Response:
    """Dead letters, each with a replay button."""
    return _page(request, "dead_letters")


@router.get("/dashboard/calls/{call_id}", include_in_schema=False)
async def call_page(request: Request, call_id: str) -> Response:
    """One call: transcript, tools, summary, post-call steps, ticket."""
    return _page(request, "call")


# --- live -----------------------------------------------------------------------------------


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in record.items()
    }


@data.get("/live")
async def live_snapshot(deps: Deps) -> dict[str, Any]:
    """Open calls and calls ended in the last minutes, with their turns and summaries."""
    calls = await deps.db.fetch(
        """
        SELECT call_id, channel, from_number, status, started_at, ended_at, end_reason,
               turn_count, customer_id
        FROM calls
        WHERE (status = 'active' AND started_at > now() - interval '1 day')
           OR ended_at > now() - make_interval(mins => $1)
        ORDER BY started_at DESC
        LIMIT 100
        """,
        RECENT_ENDED_MIN,
    )
    ids = [c["call_id"] for c in calls]
    turns = await post_call.turns_of_calls(deps.db, ids)
    summaries = await post_call.summaries_of_calls(deps.db, ids)
    by_call: dict[str, list[dict[str, Any]]] = {}
    for turn in turns:
        by_call.setdefault(turn["call_id"], []).append(_row(turn))
    summary_of = {s["call_id"]: _row(s) for s in summaries}
    return {
        "calls": [
            {
                **_row(call),
                "turns": by_call.get(call["call_id"], []),
                "summary": summary_of.get(call["call_id"]),
            }
            for call in calls
        ],
        "recent_minutes": RECENT_ENDED_MIN,
    }


@data.get("/live/events")
async def live_events(request: Request) -> StreamingResponse:
    """Server-Sent Events: every call/turn event of this deployment as it happens."""
    hub: LiveHub | None = getattr(request.app.state, "live", None)
    if hub is None or hub.stopped.is_set():
        raise HTTPException(status_code=503, detail="Live updates are not available here.")
    return StreamingResponse(
        sse_stream(hub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- aggregates -----------------------------------------------------------------------------


def _since(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


@dataclass(frozen=True, slots=True)
class Window:
    """The period (and optionally the channel) an aggregate covers."""

    hours: float
    channel: str | None

    @property
    def since(self) -> datetime:
        """Where the period starts."""
        return _since(self.hours)

    def describe(self) -> dict[str, Any]:
        """The window's fields for the reply."""
        return {"hours": self.hours, "channel": self.channel}


def _window(hours: Hours = 24, channel: ChannelFilter = None) -> Window:
    return Window(hours=hours, channel=channel)


Period = Annotated[Window, Depends(_window)]


@data.get("/stats/volume")
async def volume(
    deps: Deps,
    hours: Hours = 24,
    bucket: Literal["minute", "hour", "day"] | None = None,
) -> dict[str, Any]:
    """Calls started per channel per bucket (every bucket present, zeros included)."""
    if bucket is None:
        bucket = "minute" if hours <= 3 else "hour" if hours <= 24 * 7 else "day"
    rows = await deps.db.fetch(
        """
        WITH buckets AS (
            SELECT generate_series(date_trunc($1, $2::timestamptz), date_trunc($1, now()),
                                   ('1 ' || $1)::interval) AS t
        )
        SELECT b.t, c.channel, count(c.call_id) AS n
        FROM buckets b
        LEFT JOIN calls c ON date_trunc($1, c.started_at) = b.t AND c.started_at >= $2
        GROUP BY b.t, c.channel
        ORDER BY b.t
        """,
        bucket,
        _since(hours),
    )
    times: list[str] = []
    counts: dict[str, dict[str, int]] = {"voice": {}, "sms": {}, "chat": {}, "web_voice": {}}
    for row in rows:
        stamp = row["t"].isoformat()
        if not times or times[-1] != stamp:
            times.append(stamp)
        if row["channel"] in counts:
            counts[row["channel"]][stamp] = int(row["n"])
    return {
        "bucket": bucket,
        "hours": hours,
        "times": times,
        "series": {ch: [per.get(t, 0) for t in times] for ch, per in counts.items()},
        "totals": {ch: sum(per.values()) for ch, per in counts.items()},
    }


@data.get("/stats/latency")
async def latency(deps: Deps, period: Period) -> dict[str, Any]:
    """p50/p90/p99 of each stage of a turn (tool_ms over turns that called a tool)."""
    rows = await post_call.latency_percentiles(
        deps.db, since=period.since, channel=period.channel, stages=LATENCY_STAGES
    )
    found = {row["stage"]: row for row in rows}
    stages = []
    for stage in LATENCY_STAGES:
        row = found.get(stage)
        if row is None:
            continue
        p50, p90, p99 = (round(v, 1) for v in row["p"])
        stages.append({"stage": stage, "count": int(row["n"]), "p50": p50, "p90": p90, "p99": p99})
    return {**period.describe(), "stages": stages}


@data.get("/stats/satisfaction")
async def satisfaction(deps: Deps, period: Period) -> dict[str, Any]:
    """How many summarised calls scored 1..5, and their sentiment."""
    rows = await post_call.satisfaction_counts(deps.db, since=period.since, channel=period.channel)
    scores = {str(score): 0 for score in range(1, 6)}
    sentiment = {"positive": 0, "neutral": 0, "negative": 0}
    for row in rows:
        scores[str(row["satisfaction"])] = scores.get(str(row["satisfaction"]), 0) + row["n"]
        sentiment[row["sentiment"]] = sentiment.get(row["sentiment"], 0) + row["n"]
    total = sum(scores.values())
    mean = sum(int(k) * v for k, v in scores.items()) / total if total else None
    return {
        **period.describe(),
        "scores": scores,
        "sentiment": sentiment,
        "count": total,
        "average": round(mean, 2) if mean is not None else None,
    }


@data.get("/stats/tools")
async def tool_errors(deps: Deps, period: Period) -> dict[str, Any]:
    """Tool calls and failures per tool, and the overall error rate."""
    rows = await post_call.tool_call_counts(deps.db, since=period.since, channel=period.channel)
    tools = [
        {
            "name": row["name"],
            "calls": int(row["calls"]),
            "errors": int(row["errors"]),
            "error_rate": round(row["errors"] / row["calls"], 4) if row["calls"] else 0.0,
        }
        for row in rows
    ]
    calls = sum(t["calls"] for t in tools)
    errors = sum(t["errors"] for t in tools)
    return {
        **period.describe(),
        "tools": tools,
        "calls": calls,
        "errors": errors,
        "error_rate": round(errors / calls, 4) if calls else 0.0,
    }


router.include_router(data)
