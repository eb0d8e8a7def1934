"""``callcenter run <service>``: run one service in the foreground."""

from __future__ import annotations

import argparse
import runpy

SERVICES = ["gateway", "voice_pipeline", "conversation", "tools", "post_call"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    parser = sub.add_parser("run", help="run one service in the foreground")
    parser.add_argument("service", choices=SERVICES + [s.replace("_", "-") for s in SERVICES])
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    runpy.run_module(
        f"callcenter.{args.service.replace('-', '_')}", run_name="__main__", alter_sys=True
    )
    return 0
