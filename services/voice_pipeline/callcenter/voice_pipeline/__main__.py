"""``python -m callcenter.voice_pipeline``."""

import asyncio

from callcenter.voice_pipeline.service import serve

asyncio.run(serve())
