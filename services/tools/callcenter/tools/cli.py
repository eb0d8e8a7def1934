"""``callcenter tools issue-code CUS-0001``: create a one-time verification code (demo, support)."""

from __future__ import annotations

import argparse
import asyncio

from callcenter.common.config import load_config
from callcenter.common.db import create_pool


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tools`` command group."""
    tools = sub.add_parser("tools", help="tools service commands")
    commands = tools.add_subparsers(dest="tools_command", required=True)
    issue = commands.add_parser(
        "issue-code", help="create a one-time verification code for a customer and print it"
    )
    issue.add_argument("customer_id", help="e.g. CUS-0001")
    issue.set_defaults(func=_issue_code)


async def _issue(customer_id: str) -> str | None:
    from callcenter.tools.verification import issue_code

    pool = await create_pool(load_config().database, attempts=3)
    try:
        async with pool.acquire() as conn:
            if not await conn.fetchval(
                "SELECT 1 FROM customers WHERE customer_id = $1", customer_id
            ):
                return None
            return await issue_code(conn, customer_id)
    finally:
        await pool.close()


def _issue_code(args: argparse.Namespace) -> int:
    code = asyncio.run(_issue(args.customer_id.upper()))
    if code is None:
        print(f"no customer {args.customer_id}")
        return 1
    print(code)
    return 0
