"""Named failpoints: the places a fault test may make a process die on purpose (as fail-rs does).

Every failpoint is declared here, with what it simulates. In production they are inert: nothing
happens unless the process was started with ``FAILPOINTS`` naming one, e.g.::

    FAILPOINTS="post_call.after_effect=email:call-1;post_call.email.before_record=email"

Each entry is ``<name>=<target>``; the code passes the keys it is at (``"email"`` and
``"email:<call_id>"`` for a post-call step), and the failpoint fires when the target is one of them.
Firing exits the process at once with :data:`EXIT_CODE` (what a SIGKILL'd process reports): no
cleanup, no ack, exactly like a crash.
"""

from __future__ import annotations

import os
import sys

from callcenter.common.logging import get_logger

log = get_logger(__name__)

ENV_VAR = "FAILPOINTS"  # the name fail-rs reads; outside the CALLCENTER_ config prefix
#: The exit code of a fired failpoint (a SIGKILL'd process reports 137).
EXIT_CODE = 137

#: A post-call step committed its effect (and its record) but has not acked the message yet.
POST_CALL_AFTER_EFFECT = "post_call.after_effect"
#: The email step's SMTP send went out, but the send is not recorded yet.
POST_CALL_EMAIL_BEFORE_RECORD = "post_call.email.before_record"

KNOWN = frozenset({POST_CALL_AFTER_EFFECT, POST_CALL_EMAIL_BEFORE_RECORD})

_enabled: dict[str, str] | None = None


def parse(spec: str | None) -> dict[str, str]:
    """``name=target;…`` as a mapping; raises ValueError on an unknown name or a bad entry."""
    found: dict[str, str] = {}
    for entry in (spec or "").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, target = entry.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not target:
            raise ValueError(f"{ENV_VAR}: {entry!r} is not <name>=<target>")
        if name not in KNOWN:
            raise ValueError(f"{ENV_VAR}: no failpoint named {name!r} (known: {sorted(KNOWN)})")
        found[name] = target
    return found


def configure(spec: str | None) -> None:
    """Enable the failpoints in ``spec`` (replacing the ones enabled before); None disables all."""
    global _enabled
    _enabled = parse(spec)


def enabled() -> dict[str, str]:
    """The failpoints enabled in this process (read from the environment on first use)."""
    global _enabled
    if _enabled is None:
        _enabled = parse(os.environ.get(ENV_VAR))
    return _enabled


def should_fire(name: str, *keys: str) -> bool:
    """Whether the failpoint ``name`` is enabled for one of ``keys``."""
    if name not in KNOWN:
        raise ValueError(f"no failpoint named {name!r}")
    target = enabled().get(name)
    return target is not None and target in keys


def fail_point(name: str, *keys: str) -> None:
    """Exit the process at once if the failpoint ``name`` is enabled for one of ``keys``."""
    if should_fire(name, *keys):
        log.warning("failpoint fired: exiting", failpoint=name, target=enabled()[name])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_CODE)
