"""``python -m callcenter.gateway``."""

import asyncio

from callcenter.gateway.service import serve

asyncio.run(serve())
