"""``python -m callcenter.tools``."""

import asyncio

from callcenter.tools.service import serve

asyncio.run(serve())
