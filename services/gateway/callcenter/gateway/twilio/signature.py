"""X-Twilio-Signature checks with the twilio package's RequestValidator.

Twilio signs the full public URL it called (scheme, host, path and query) plus the sorted POST
parameters with the account's auth token. Behind a proxy the URL the app sees differs from the
one Twilio used, so the URL is rebuilt from ``gateway.public_base_url``. A form key Twilio sends
more than once is signed with every one of its values, so it is validated that way.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps

log = get_logger(__name__)


def public_url(deps: GatewayDeps, request: Request) -> str:
    """The URL Twilio called: the configured public base plus this request's path and query."""
    url = deps.config.gateway.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


def validator(deps: GatewayDeps) -> RequestValidator | None:
    """The validator for the configured auth token (None when Twilio has no token configured)."""
    token = deps.config.twilio.auth_token
    if token is None or not token.get_secret_value():
        return None
    return RequestValidator(token.get_secret_value())


async def verified_form(request: Request, deps: GatewayDeps) -> dict[str, str]:
    """The webhook's form parameters, after checking its signature.

    Raises:
        HTTPException: 403 when the signature is absent or wrong, or no auth token is configured
            (an unsigned webhook is never trusted); 400 when the body is not a form.

    """
    signature = request.headers.get("X-Twilio-Signature")
    check = validator(deps)
    try:
        form = await request.form()
    except Exception as exc:
        raise HTTPException(
            status_code=400, detail="expected an application/x-www-form-urlencoded body"
        ) from exc
    items = [(key, str(value)) for key, value in form.multi_items()]
    # Twilio signs every value of a repeated key: validate against the multi-valued form
    # (RequestValidator reads it through ``getlist``), not a dict that kept one value per key.
    signed = ImmutableMultiDict(items)
    if check is None:
        log.error("twilio webhook refused: twilio.auth_token is not configured")
        raise HTTPException(status_code=403, detail="twilio webhooks are not configured")
    if not signature or not check.validate(public_url(deps, request), signed, signature):
        log.warning("twilio webhook refused: bad signature", path=request.url.path)
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    if any("\x00" in key or "\x00" in value for key, value in items):
        raise HTTPException(status_code=400, detail="NUL characters are not accepted")
    return dict(items)
