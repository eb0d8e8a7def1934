"""``python -m callcenter.post_call``: run the steps listed in ``post_call.steps``."""

import asyncio

from callcenter.post_call.service import serve

asyncio.run(serve())
