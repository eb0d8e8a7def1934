"""``callcenter inbox add-agent "Dana"``: create a named agent for the inbox and print its token."""

from __future__ import annotations

import argparse
import asyncio

from callcenter.common.config import load_config
from callcenter.common.db import create_pool


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inbox`` command group."""
    inbox = sub.add_parser("inbox", help="agent inbox commands")
    commands = inbox.add_subparsers(dest="inbox_command", required=True)
    add = commands.add_parser(
        "add-agent", help="create a named agent account and print its token (shown once)"
    )
    add.add_argument("name", help='the name customers see, e.g. "Dana"')
    add.set_defaults(func=_add_agent)


async def _create(name: str) -> str:
    from callcenter.gateway.inbox.agents import create_agent

    pool = await create_pool(load_config().database, attempts=3)
    try:
        return (await create_agent(pool, name=name)).token
    finally:
        await pool.close()


def _add_agent(args: argparse.Namespace) -> int:
    from callcenter.gateway.inbox.agents import AgentNameTaken

    name = args.name.strip()
    if not name or len(name) > 60:
        print("an agent name is 1 to 60 characters")
        return 1
    try:
        token = asyncio.run(_create(name))
    except AgentNameTaken as exc:
        print(exc)
        return 1
    print(token)
    return 0
