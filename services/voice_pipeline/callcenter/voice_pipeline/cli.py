"""``callcenter simulate-call``: place a phone call against a running system and print it.

    callcenter simulate-call --say "Where is my order?" --say "Goodbye"
    callcenter simulate-call --wav question.wav --dtmf 1001#

It acts as Twilio (see :mod:`callcenter.voice_pipeline.simulator`): the signed webhook to the
gateway, the media stream to the voice pipeline, the caller's audio in real time. It prints each
turn's transcript from turn.completed on the bus, with the latency the caller felt (end of their
speech -> first audio back) and the stages the system measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from callcenter.common.bus import Bus
from callcenter.common.config import load_config
from callcenter.voice_pipeline.preflight import preflight


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate-call``."""
    parser = sub.add_parser(
        "simulate-call",
        help="place a simulated phone call (as Twilio would) and print the transcript",
    )
    parser.add_argument("--say", action="append", default=[], help="a caller turn (espeak-ng)")
    parser.add_argument("--wav", action="append", default=[], help="a caller turn from a WAV file")
    parser.add_argument("--dtmf", action="append", default=[], help="keypad presses, e.g. 1001#")
    parser.add_argument("--gateway", help="gateway URL (default: gateway.host/port from config)")
    parser.add_argument(
        "--public-base-url", help="URL Twilio signs (default: gateway.public_base_url)"
    )
    parser.add_argument("--auth-token", help="Twilio auth token (default: twilio.auth_token)")
    parser.add_argument("--from-number", default="+15551230000")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per reply")
    parser.set_defaults(func=_run)


Turn = tuple[str, bytes | None, str | None]  # label, caller audio, keypad digits


def _run(args: argparse.Namespace) -> int:
    from callcenter.voice_pipeline.simulator import speech_ulaw, wav_to_ulaw

    turns: list[Turn] = []
    for text in args.say:
        turns.append((text, speech_ulaw(text), None))
    for path in args.wav:
        turns.append((f"<{path}>", wav_to_ulaw(Path(path).read_bytes()), None))
    for digits in args.dtmf:
        turns.append((f"[keypad {digits}]", None, digits))
    return asyncio.run(simulate(args, turns))


async def simulate(args: argparse.Namespace, turns: list[Turn]) -> int:
    """Place the call; print greeting, turns, latencies and the end."""
    from callcenter.voice_pipeline.simulator import TwilioCaller

    config = load_config()
    token = args.auth_token or (
        config.twilio.auth_token.get_secret_value() if config.twilio.auth_token else None
    )
    if not token:
        print("no Twilio auth token: set TWILIO_AUTH_TOKEN or pass --auth-token")
        return 2
    gateway = args.gateway or f"http://{config.gateway.host}:{config.gateway.port}"
    problem = await preflight(config, gateway=gateway)
    if problem:
        print(f"cannot place the call: {problem}")
        return 2

    bus = await Bus.connect(config.nats, name="simulate-call", ensure=False)
    seen: list[dict[str, Any]] = []

    async def on_event(msg: Any) -> None:
        seen.append({"subject": msg.subject, **json.loads(msg.data)})

    sub = await bus.nc.subscribe(bus.subject("turn.completed"), cb=on_event)
    sub_end = await bus.nc.subscribe(bus.subject("call.ended"), cb=on_event)
    sub_heard = await bus.nc.subscribe(bus.subject("turn.heard"), cb=on_event)
    caller = TwilioCaller(
        gateway_url=gateway,
        public_base_url=args.public_base_url or config.gateway.public_base_url,
        auth_token=token,
        from_number=args.from_number,
    )
    budget = args.timeout * (len(turns) + 2) + 10.0
    try:
        async with asyncio.timeout(budget):
            return await _converse(args, caller, turns, seen)
    except TimeoutError:
        print(f"gave up: the call did not finish within {budget:.0f} s (--timeout per reply)")
        return 1
    finally:
        await sub.unsubscribe()
        await sub_end.unsubscribe()
        await sub_heard.unsubscribe()
        await bus.drain()


async def _converse(
    args: argparse.Namespace, caller: Any, turns: list[Turn], seen: list[dict[str, Any]]
) -> int:
    """Greeting, each turn, hang-up; prints as it goes."""
    await caller.call()
    call_id = caller.parameters.get("call_id", "?")
    print(f"call {call_id} (CallSid {caller.call_sid})")
    greeting = await caller.wait_for_bot(timeout_s=args.timeout)
    assert caller.connected_at is not None
    print(
        f"  bot   greeting, {greeting.seconds:.1f}s of audio, first audio "
        f"{(greeting.started - caller.connected_at) * 1000:.0f} ms after stream start"
    )
    for index, (label, audio, digits) in enumerate(turns):
        if digits is not None:
            await caller.dtmf(digits)
        else:
            assert audio is not None
            await caller.say(ulaw=audio)
        ended_at = time.monotonic()
        print(f"  you   {label}")
        try:
            reply = await caller.wait_for_bot(after=ended_at, timeout_s=args.timeout)
            felt = (reply.started - ended_at) * 1000
        except TimeoutError:
            print("  bot   (no answer)")
            continue
        event = await _turn_event(seen, call_id, index, timeout_s=5.0)
        text = event["assistant_text"] if event else "(no turn.completed seen)"
        print(f"  bot   {text}")
        latency = event.get("latency", {}) if event else {}
        stages = ", ".join(f"{k}={v}" for k, v in latency.items() if v is not None)
        print(f"        felt {felt:.0f} ms (end of speech -> first audio); {stages}")
        heard = await _heard_event(seen, call_id, event, timeout_s=5.0) if event else None
        if heard is not None:
            keys = ("first_audio_ms", "first_audio_sent_ms", "transcript_to_first_audio_sent_ms")
            print("        heard: " + ", ".join(f"{k}={heard.get(k)}" for k in keys))
    await caller.hang_up()
    for _ in range(50):
        ended = [e for e in seen if e["subject"].endswith("call.ended") and e["call_id"] == call_id]
        if ended:
            print(f"call ended: {ended[0]['reason']}, {ended[0]['turn_count']} turns")
            break
        await asyncio.sleep(0.1)
    return 0


async def _turn_event(
    seen: list[dict[str, Any]], call_id: str, index: int, *, timeout_s: float
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        mine = [
            e for e in seen if e["subject"].endswith("turn.completed") and e["call_id"] == call_id
        ]
        if len(mine) > index:
            return mine[index]
        await asyncio.sleep(0.05)
    return None


async def _heard_event(
    seen: list[dict[str, Any]], call_id: str, turn: dict[str, Any], *, timeout_s: float
) -> dict[str, Any] | None:
    """The turn.heard of ``turn`` (published once its answer was spoken)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for e in seen:
            if (
                e["subject"].endswith("turn.heard")
                and e["call_id"] == call_id
                and e.get("turn_index") == turn.get("turn_index")
            ):
                return e
        await asyncio.sleep(0.05)
    return None
