"""Card numbers, SSNs and one-time codes never reach logs, stored transcripts, events or emails;
secrets never reach logs or ``config check``.

A verified customer pastes a card number, an SSN and a one-time code into the web chat and leaves
unhappy, so every post-call effect runs (transcript, summary, CRM, email, ticket). Then every
place the words could land is read: each service's log file, the turns, summaries, CRM
activities, tickets and emails tables, every event of the call on the bus, and the email the SMTP
catcher received. The redaction markers in the stored transcript are the control that the text
was stored at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from callcenter.common.pii import CARD_MASK, SSN_MASK
from tests.security.conftest import SecureSystem
from tests.support.chat_client import ChatVisitor

CARD = "4111 1111 1111 1111"
CARD_DASHED = "5500-0000-0000-0004"
SSN = "078-05-1120"
CODE = "482913"
RAW = [CARD, CARD.replace(" ", ""), CARD_DASHED, CARD_DASHED.replace("-", ""), SSN, CODE]
PII_MESSAGE = (
    f"My card is {CARD}, my other card is {CARD_DASHED}, my SSN is {SSN} "
    f"and my verification code is {CODE}. This is still not resolved and I am very unhappy."
)


#: A log line cut short (a debug logger truncating a long message) can end inside a number, so
#: a leak is any prefix of a raw value long enough to identify it, not only the whole value.
LEAK_PREFIX = 9


def _leaks(text: str) -> list[str]:
    return [raw for raw in RAW if raw[:LEAK_PREFIX] in text]


async def _bus_events(system: SecureSystem, call_id: str) -> list[bytes]:
    return await system.events_of({call_id})


async def _wait_rows(system: SecureSystem, query: str, call_id: str, *, at_least: int = 1) -> list:
    for _ in range(300):
        rows = await system.db.fetch(query, call_id)
        if len(rows) >= at_least:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"no rows for {query!r}")


async def test_pii_is_redacted_everywhere_it_is_stored_or_sent(
    secure_system: SecureSystem,
) -> None:
    customer = await secure_system.db.fetchrow(
        "SELECT c.customer_id, c.email, c.zip FROM customers c JOIN orders o USING (customer_id) "
        "WHERE o.order_id = 'ORD-1001'"
    )
    async with ChatVisitor(secure_system.gateway.url) as chat:
        await chat.say("Show my recent orders")
        verified = await chat.say(f"ORD-1001 and ZIP {customer['zip']}")
        assert "verify_identity" in verified.tools, verified.text
        reply = await chat.say(PII_MESSAGE)
        assert reply.kind == "done"
        assert not _leaks(reply.text), reply.text
        await chat.end()
        call_id = chat.call_id

    turns = await _wait_rows(
        secure_system,
        "SELECT user_text, assistant_text, tool_calls FROM turns WHERE call_id = $1 ORDER BY turn_index",
        call_id,
        at_least=3,
    )
    stored = json.dumps([dict(r) for r in turns], default=str)
    assert not _leaks(stored), stored
    assert CARD_MASK in stored and SSN_MASK in stored  # the text was stored, redacted

    mails = await asyncio.to_thread(secure_system.smtp.wait_for, customer["email"], timeout_s=30)
    assert mails, "the unhappy verified customer got no follow-up email"
    for mail in mails:
        assert not _leaks(str(mail.message)), str(mail.message)

    tables = {
        "summaries": "SELECT * FROM summaries WHERE call_id = $1",
        "emails": "SELECT * FROM emails WHERE call_id = $1",
        "crm_activities": "SELECT * FROM crm_activities WHERE call_id = $1",
        "tickets": "SELECT * FROM tickets WHERE call_id = $1",
        "dead_letters": "SELECT * FROM dead_letters WHERE call_id = $1",
    }
    for table, query in tables.items():
        rows = await secure_system.db.fetch(query, call_id)
        text = json.dumps([dict(r) for r in rows], default=str)
        assert not _leaks(text), (table, text)

    events = await _bus_events(secure_system, call_id)
    assert len(events) >= 3  # call.started, turn.completed…, call.ended, call.summarized
    for data in events:
        assert not _leaks(data.decode(errors="replace")), data

    # The services that handled the call log its id once they have handled it: wait for that
    # line in each log (a positive signal that their lines about this call are in the file).
    for name in ("gateway", "conversation", "post_call"):
        proc = secure_system.services[name]
        for _ in range(300):
            if call_id in proc.log_text():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{name} never logged call {call_id}")
    for name, proc in secure_system.services.items():
        leaks = _leaks(proc.log_text())
        assert not leaks, (name, leaks)


def test_secrets_never_reach_the_logs(secure_system: SecureSystem) -> None:
    logs = secure_system.all_logs()
    assert logs, "the services logged nothing"
    for name, value in secure_system.secrets.items():
        assert value not in logs, f"{name} appears in a service log"


def test_config_check_masks_every_secret(secure_system: SecureSystem) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        env={**os.environ, **secure_system.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name, value in secure_system.secrets.items():
        assert value not in output, f"config check prints {name}"


def test_exception_text_in_logs_is_redacted() -> None:
    """A traceback's message is rendered after the other processors; it is redacted too."""
    program = (
        "from callcenter.common.logging import configure_logging, get_logger\n"
        "configure_logging(service='probe', fmt='json')\n"
        "try:\n"
        f"    raise ValueError('declined card {CARD}, ssn {SSN}, verification code is {CODE}')\n"
        "except ValueError:\n"
        "    get_logger('probe').exception('payment failed', token='s3cr3t-value')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    line = result.stderr.strip().splitlines()[-1]
    record = json.loads(line)
    assert "ValueError" in record["exception"], line
    assert not _leaks(line), line
    assert CARD_MASK in record["exception"] and "s3cr3t-value" not in line
