"""``callcenter eval``: run the scenario files against the system and print the scores."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.db import create_pool
from callcenter.eval.report import render, summarize, write_results
from callcenter.eval.runner import Runner, Target
from callcenter.eval.scenarios import ScenarioError, load, select
from callcenter.eval.system import LocalSystem, gateway_url, is_ready

DEFAULT_SCENARIOS = Path("eval/scenarios")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` command."""
    parser = sub.add_parser(
        "eval", help="run the scenario evaluation against the system and print the scores"
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help=f"scenario files or folders (default {DEFAULT_SCENARIOS})",
    )
    parser.add_argument("--only", nargs="*", help="run only scenarios whose id starts so")
    parser.add_argument("--tag", nargs="*", help="run only scenarios with every one of these tags")
    parser.add_argument(
        "--skip-tag",
        nargs="*",
        help="leave out scenarios with any of these tags (e.g. needs-inbox)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (pass^k)")
    parser.add_argument(
        "--threshold", type=float, default=0.95, help="exit 1 when the pass rate is below this"
    )
    parser.add_argument("--results", type=Path, default=Path(".run/eval-results.json"))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--gateway-url", help="a running gateway (default: from the config)")
    parser.add_argument(
        "--start",
        action="store_true",
        help="start the services the way `make run` does when no gateway is answering",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep each run's customers")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply")
    parser.set_defaults(func=_eval)


def engine_name(config: CallCenterConfig) -> str:
    """The engine the configuration selects (the first LLM, else the offline engine)."""
    return config.llm.models[0].model if config.llm.models else "offline"


async def _run(args: argparse.Namespace) -> int:
    config = load_config()
    try:
        scenarios = select(
            load(args.paths or [DEFAULT_SCENARIOS]),
            only=args.only,
            tags=args.tag,
            skip_tags=args.skip_tag,
        )
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not scenarios:
        print("error: no scenario matched", file=sys.stderr)
        return 2
    url = args.gateway_url or gateway_url(config)
    system: LocalSystem | None = None
    token = config.twilio.auth_token.get_secret_value() if config.twilio.auth_token else None
    if not await is_ready(url):
        if not args.start:
            print(f"error: no gateway is ready at {url} (use --start)", file=sys.stderr)
            return 2
        system = LocalSystem(config=config)
        print("starting the services (logs in .run/logs) …", file=sys.stderr)
        await system.start()
        token = system.auth_token
    pool = await create_pool(config.database, attempts=3)
    try:
        runner = Runner(
            pool=pool,
            target=Target(
                gateway_url=url,
                public_base_url=config.gateway.public_base_url,
                twilio_auth_token=token,
                timeout_s=args.timeout,
            ),
            concurrency=args.concurrency,
            keep_data=args.keep_data,
        )
        results = await runner.run(scenarios, repeat=args.repeat)
    finally:
        await pool.close()
        if system is not None:
            await system.stop()
    engine = engine_name(config)
    print(render(results, engine=engine, repeat=args.repeat))
    write_results(args.results, results, engine=engine, repeat=args.repeat)
    print(f"results: {args.results}")
    summary = summarize(results)
    if summary.pass_rate < args.threshold:
        print(f"FAIL: pass rate {summary.pass_rate:.1%} is below {args.threshold:.0%}")
        return 1
    return 0


def _eval(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
