"""``python -m callcenter.conversation``."""

import asyncio

from callcenter.conversation.service import serve

asyncio.run(serve())
