"""``python -m callcenter.post_call``: run the steps listed in ``post_call.steps``."""

from callcenter.common.event_loop import run
from callcenter.post_call.service import serve

run(serve())
