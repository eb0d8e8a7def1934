"""The media-stream token: only its issuer can mint it, for one CallSid, for a short while."""

from __future__ import annotations

import pytest

from callcenter.common.stream_token import (
    InvalidStreamToken,
    sign_stream_token,
    verify_stream_grant,
    verify_stream_token,
)

SECRET = b"stream-secret"


def test_a_fresh_token_names_its_call() -> None:
    token = sign_stream_token(SECRET, call_id="c1", call_sid="CA1", ttl_s=60, now=1000)
    assert verify_stream_token(SECRET, token, call_sid="CA1", now=1030) == "c1"


@pytest.mark.parametrize(
    ("token_for", "secret", "call_sid", "now"),
    [
        ("CA1", b"another-secret", "CA1", 1030),  # minted with another key
        ("CA1", SECRET, "CA2", 1030),  # replayed on another call's stream
        ("CA1", SECRET, "CA1", 1061),  # expired
    ],
)
def test_other_tokens_are_refused(token_for: str, secret: bytes, call_sid: str, now: float) -> None:
    token = sign_stream_token(secret, call_id="c1", call_sid=token_for, ttl_s=60, now=1000)
    with pytest.raises(InvalidStreamToken):
        verify_stream_token(SECRET, token, call_sid=call_sid, now=now)


@pytest.mark.parametrize(
    "token", [None, "", "a.b.c", "a" * 20000, "c1.CA1.notanumber.00", "c1.CA1.1.r1.é"]
)
def test_malformed_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(InvalidStreamToken):
        verify_stream_token(SECRET, token, call_sid="CA1")


def test_a_tampered_call_id_is_refused() -> None:
    token = sign_stream_token(SECRET, call_id="c1", call_sid="CA1", ttl_s=60)
    with pytest.raises(InvalidStreamToken):
        verify_stream_token(SECRET, "c2" + token[2:], call_sid="CA1")


def test_a_resumed_streams_token_names_its_call_and_resume() -> None:
    token = sign_stream_token(SECRET, call_id="c1", call_sid="CA1", ttl_s=60, resume=2, now=1000)
    grant = verify_stream_grant(SECRET, token, call_sid="CA1", now=1030)
    assert (grant.call_id, grant.resume) == ("c1", 2)
    first = sign_stream_token(SECRET, call_id="c1", call_sid="CA1", ttl_s=60, now=1000)
    assert verify_stream_grant(SECRET, first, call_sid="CA1", now=1030).resume == 0
    # where only a first stream may open (a browser call), a resume token is refused
    with pytest.raises(InvalidStreamToken):
        verify_stream_token(SECRET, token, call_sid="CA1", now=1030)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(".r2.", ".r3."),  # another resume than the one granted
        lambda t: t.replace(".r2.", "."),  # the resume dropped: a first stream's token
        lambda t: t.replace(".r2.", ".r-1."),
    ],
)
def test_a_tampered_resume_number_is_refused(tamper) -> None:  # noqa: ANN001
    token = sign_stream_token(SECRET, call_id="c1", call_sid="CA1", ttl_s=60, resume=2)
    with pytest.raises(InvalidStreamToken):
        verify_stream_grant(SECRET, tamper(token), call_sid="CA1")
