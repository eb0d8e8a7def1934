"""A small, bounded burst of chats while NATS restarts, PostgreSQL restarts, and post_call and the
gateway are SIGKILLed; then every event and effect is accounted for (see ``harness.py``).

Nothing acknowledged may be lost, nothing may be stored or sent twice, nothing unexpected may
appear, and every conversation finishes (resumed after a dropped socket, or told plainly that a
turn failed). The longer run with figures is ``python -m bench.faults_chat``.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.harness import account, run_with_faults, summary, world

pytestmark = pytest.mark.timeout(300)

CLEAR_MESSAGES = {
    "Sorry, I'm having trouble answering right now. Please try again in a moment.",
    "That conversation has ended; starting a new one.",
}


async def test_no_event_or_effect_is_lost_or_duplicated_through_faults() -> None:
    async with world() as w:
        faults = [
            (1.0, lambda: w.restart_server("nats", down_s=1.5)),
            (1.0, lambda: w.kill_service("post_call")),
            (1.0, lambda: w.restart_server("postgres", down_s=1.0)),
            (0.5, lambda: w.kill_service("gateway")),
        ]
        visits, _ = await run_with_faults(w, conversations=40, concurrency=4, faults=faults)
        ledger = await account(w, visits)
        report = ledger.table() + "\n" + json.dumps(summary(ledger), default=str, indent=1)

    # A follow-up email is sent at most once. The one case it can go unsent is a crash between
    # reserving it and handing it to SMTP: that email is dead-lettered as "may already have been
    # delivered", never silently dropped and never sent twice.
    smtp = ledger.rows["emails delivered (SMTP)"]
    exact = {name: row for name, row in ledger.rows.items() if row is not smtp}
    assert sum(r["lost"] for r in exact.values()) == 0, report
    assert sum(r["duplicated"] for r in ledger.rows.values()) == 0, report
    assert set(ledger.details["emails_not_delivered"]) <= set(ledger.details["uncertain_emails"]), (
        report
    )
    assert ledger.unexpected == 0, report
    assert ledger.details["completed"] == len(visits), report
    assert set(ledger.details["turn_errors"]) <= CLEAR_MESSAGES, report
    # The run really went through the faults, and the work still got done.
    assert len(ledger.details["faults"]) == 8, report
    assert ledger.rows["call.ended"]["acknowledged"] == len(visits), report
