"""Run a service's main coroutine on uvloop (libuv) when it is installed, else on asyncio's loop.

uvloop comes with ``uvicorn[standard]`` (uvicorn's own CLI picks it by default; a service that
embeds uvicorn in ``asyncio.run`` does not get it), so every service image has it; its loop and
transports cost less CPU per socket read and write than the pure-Python selector loop.
``EVENT_LOOP=asyncio`` chooses the standard loop, to compare or to rule uvloop out when chasing a
bug (outside the ``CALLCENTER_`` config prefix: the loop is chosen before the config is read).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

ENV_VAR = "EVENT_LOOP"


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(main)`` on uvloop unless ``EVENT_LOOP=asyncio`` or it is missing."""
    if os.environ.get(ENV_VAR, "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:  # a platform without it (Windows, PyPy)
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
