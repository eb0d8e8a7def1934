"""The eval harness against the real services: a fast subset of the suite passes on the offline
engine, a wrong expectation fails, bad scenario files are refused, and the CLI exits non-zero
below its threshold. (CI runs this; `make eval` runs the whole suite.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.common.config import CallCenterConfig
from callcenter.eval.report import render, summarize
from callcenter.eval.runner import Runner, Target
from callcenter.eval.scenarios import Scenario, ScenarioError, load, select
from tests.support.environment import TestEnvironment

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "eval" / "scenarios"
AUTH_TOKEN = uuid.uuid4().hex

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def system(
    service_factory: Callable[..., Any], test_env: TestEnvironment, db_pool: asyncpg.Pool
) -> Iterator[str]:
    """tools, conversation, post_call and a gateway that checks SMS signatures with our token."""
    started = [
        service_factory("tools", wait=False),
        service_factory("conversation", wait=False),
        service_factory("post_call", wait=False),
        service_factory(
            "gateway",
            wait=False,
            extra_env={
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "CALLCENTER_GATEWAY__SMS_REPLY_BUDGET_S": "14",
            },
        ),
    ]
    for proc in started:  # started together: their imports overlap on the machine's cores
        proc.wait_ready()
    yield f"http://127.0.0.1:{test_env.ports['gateway']}"


def runner(db_pool: asyncpg.Pool, url: str) -> Runner:
    return Runner(
        pool=db_pool,
        target=Target(gateway_url=url, public_base_url=url, twilio_auth_token=AUTH_TOKEN),
        concurrency=4,
    )


async def test_fast_subset_passes_on_the_offline_engine(system: str, db_pool: asyncpg.Pool) -> None:
    suite = load([SCENARIOS])
    assert len(suite) >= 60
    chosen = select(suite, tags=["fast"]) + select(suite, only=["cancel-sms"])
    assert {s.channel for s in chosen} == {"chat", "sms"}
    results = await runner(db_pool, system).run(chosen)
    report = render(results, engine="offline", repeat=1)
    assert summarize(results).pass_rate == 1.0, report
    # each run worked on its own customer, removed afterwards
    left = await db_pool.fetchval("SELECT count(*) FROM customers WHERE customer_id LIKE 'CUS-E%'")
    assert left == 0


async def test_a_wrong_end_state_or_reply_fails_the_scenario(
    system: str, db_pool: asyncpg.Pool
) -> None:
    wrong = Scenario.model_validate(
        {
            "id": "wrong-expectations",
            "category": "harness",
            "turns": [
                {"say": "Please cancel order {pending}, zip {zip}", "reply_has": ["cancelled"]},
                {"say": "thanks", "reply_lacks": ["welcome"]},
            ],
            "never_say": ["{pending}"],
            "expect": {"orders": {"pending": "pending", "shipped": "shipped"}, "tickets": 1},
        }
    )
    (result,) = await runner(db_pool, system).run([wrong], repeat=1)
    assert not result.passed
    assert "order pending: status 'cancelled', expected 'pending'" in result.problems
    assert "tickets opened in this conversation: 0, expected 1" in result.problems
    assert "turn 2: reply must not contain 'welcome'" in result.problems
    assert any("must never contain 'ORD-" in p for p in result.problems)
    assert not any("shipped" in p for p in result.problems)  # what held is not reported
    assert len(result.transcript) == 2


async def test_pass_hat_k_counts_a_scenario_only_when_every_repeat_passes(
    system: str, db_pool: asyncpg.Pool
) -> None:
    (status,) = select(load([SCENARIOS]), only=["status-public"])
    results = await runner(db_pool, system).run([status], repeat=2)
    assert [r.attempt for r in results] == [1, 2]
    assert len({r.call_id for r in results}) == 2  # two conversations
    summary = summarize(results)
    assert (summary.runs, summary.passed_all) == (2, 1 if all(r.passed for r in results) else 0)


def test_bad_scenario_files_are_refused_with_the_file_and_scenario(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("- id: one\n  category: x\n  turns: [{say: hi, reply_haz: [hello]}]\n")
    with pytest.raises(ScenarioError, match=r"(?s)typo.yaml: scenario #1 \(one\).*reply_haz"):
        load([typo])
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "- {id: same, category: x, turns: [{say: hi}]}\n- {id: same, category: y, turns: [{say: yo}]}\n"
    )
    with pytest.raises(ScenarioError, match="'same' is also in twice.yaml"):
        load([twice])
    (tmp_path / "notalist.yaml").write_text("id: x\n")
    with pytest.raises(ScenarioError, match="expected a list"):
        load([tmp_path / "notalist.yaml"])


def test_cli_prints_the_table_writes_results_and_exits_1_below_the_threshold(
    system: str, test_env: TestEnvironment, config: CallCenterConfig, tmp_path: Path
) -> None:
    scenarios = tmp_path / "two.yaml"
    scenarios.write_text(
        "- id: greets\n  category: small talk\n  turns: [{say: hello, reply_has: [help]}]\n"
        "- id: impossible\n  category: small talk\n"
        "  turns: [{say: hello, reply_has: [a sentence the assistant never says]}]\n"
    )
    results = tmp_path / "results.json"
    env = {**os.environ, **test_env.env, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    command = [sys.executable, "-m", "callcenter.common.cli", "eval", str(scenarios)]
    command += ["--results", str(results), "--threshold", "0.9"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "greets" in done.stdout and "1/2 runs passed (50.0%)" in done.stdout
    assert "customer> hello" in done.stdout  # the failing transcript
    data = json.loads(results.read_text())
    assert {r["scenario"]: r["passed"] for r in data["runs"]} == {
        "greets": True,
        "impossible": False,
    }


def test_selecting_by_id_tag_and_left_out_tag() -> None:
    suite = load([SCENARIOS])
    pending_features = ["needs-inbox", "needs-lockout", "needs-promises"]
    kept = select(suite, skip_tags=pending_features)
    assert 0 < len(suite) - len(kept) < 10
    assert not any(set(s.tags) & set(pending_features) for s in kept)
    assert {s.id for s in select(suite, only=["cancel-"], tags=["sms"])} == {"cancel-sms"}
    # every category the issue lists has scenarios
    categories = {s.category for s in suite}
    assert {
        "verification", "multi-intent", "corrections", "complaints", "hand-off", "policy",
        "off-topic", "small talk", "typos", "non-English", "other customer's data",
    } <= categories  # fmt: skip
