"""The gateway's FastAPI application: one router per edge."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from callcenter.gateway.api_docs import add_api_docs
from callcenter.gateway.auth import require_admin
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.limits import BodySizeLimit
from callcenter.gateway.routes import (
    api,
    chat,
    dashboard,
    inbox,
    mail_and_replay,
    twilio_sms,
    twilio_voice,
    web_voice,
)

STATIC_DIR = Path(__file__).parent / "static"


def create_app(deps: GatewayDeps | None = None) -> FastAPI:
    """Build the app; ``deps`` is set before serving (None only for OpenAPI generation)."""
    app = FastAPI(
        title="Callcenter gateway",
        description="Webhooks, web chat, REST API and dashboard of the AI contact center.",
        version="0.1.0",
        openapi_url=None,  # served by add_api_docs: admins only unless configured public
        docs_url=None,
        redoc_url=None,
    )
    add_api_docs(app)
    app.state.deps = deps
    app.add_middleware(BodySizeLimit)
    app.include_router(chat.router)
    app.include_router(twilio_voice.router)
    app.include_router(web_voice.router)
    app.include_router(twilio_sms.router)
    app.include_router(api.router, dependencies=[Depends(require_admin)])
    app.include_router(dashboard.router)
    app.include_router(mail_and_replay.router)
    app.include_router(inbox.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
