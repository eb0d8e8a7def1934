"""Failpoints are inert unless enabled, fire only for their target, and exit like a SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from callcenter.common import failpoints
from callcenter.common.failpoints import POST_CALL_AFTER_EFFECT, POST_CALL_EMAIL_BEFORE_RECORD


@pytest.fixture(autouse=True)
def _reset() -> None:
    yield
    failpoints.configure(None)


def test_nothing_fires_unless_enabled() -> None:
    failpoints.configure(None)
    assert not failpoints.should_fire(POST_CALL_AFTER_EFFECT, "email", "email:c1")
    failpoints.fail_point(POST_CALL_AFTER_EFFECT, "email", "email:c1")  # returns: inert


def test_a_failpoint_fires_only_for_its_target() -> None:
    failpoints.configure(
        f"{POST_CALL_AFTER_EFFECT}=email:c1; {POST_CALL_EMAIL_BEFORE_RECORD}=email"
    )
    assert failpoints.should_fire(POST_CALL_AFTER_EFFECT, "email", "email:c1")
    assert not failpoints.should_fire(POST_CALL_AFTER_EFFECT, "email", "email:c2")
    assert not failpoints.should_fire(POST_CALL_AFTER_EFFECT, "ticket", "ticket:c1")
    assert failpoints.should_fire(POST_CALL_EMAIL_BEFORE_RECORD, "email", "email:c9")


@pytest.mark.parametrize("spec", ["post_call.nope=email", "post_call.after_effect", "x="])
def test_a_bad_spec_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ValueError, match="FAILPOINTS"):
        failpoints.parse(spec)


def test_an_unknown_name_in_code_is_an_error() -> None:
    with pytest.raises(ValueError):
        failpoints.should_fire("post_call.typo", "email")


def test_a_fired_failpoint_exits_the_process_at_once() -> None:
    code = (
        "from callcenter.common.failpoints import fail_point, POST_CALL_AFTER_EFFECT as P\n"
        "fail_point(P, 'ticket', 'ticket:c2')\n"
        "print('passed the ticket point', flush=True)\n"
        "fail_point(P, 'email', 'email:c1')\n"
        "print('not reached', flush=True)\n"
    )
    env = {**os.environ, failpoints.ENV_VAR: f"{POST_CALL_AFTER_EFFECT}=email"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == failpoints.EXIT_CODE, done.stderr
    assert "passed the ticket point" in done.stdout and "not reached" not in done.stdout
