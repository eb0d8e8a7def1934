"""``/docs`` and ``/openapi.json``: the API's description, for admins unless configured public.

The description lists every admin endpoint and its parameters, which a stranger has no use for;
``security.public_api_docs`` (default false) serves it to anyone, otherwise it needs the admin
token or a dashboard session (which the browser sends when Swagger UI fetches the schema).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from callcenter.gateway.auth import require_admin

OPENAPI_URL = "/openapi.json"


async def _allowed(request: Request) -> None:
    deps = request.app.state.deps
    if deps is None or not deps.config.security.public_api_docs:
        await require_admin(request)


def add_api_docs(app: FastAPI) -> None:
    """Serve the schema and Swagger UI (create the app with ``openapi_url=None``)."""

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        await _allowed(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        await _allowed(request)
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - API")
