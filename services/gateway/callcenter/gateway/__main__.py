"""``python -m callcenter.gateway`` (on uvloop; ``EVENT_LOOP=asyncio`` for asyncio's own loop)."""

from callcenter.common.event_loop import run
from callcenter.gateway.service import serve

run(serve())
