"""The ``callcenter`` command: run services, migrate, seed, check config, chat.

Services add their own sub-commands through the ``callcenter.cli`` entry-point group: each entry
is a function ``register(subparsers)`` that adds a parser whose ``func`` default takes the parsed
arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from callcenter.common.cli import chat, config_check, database, run, up


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every built-in and plugged-in command."""
    parser = argparse.ArgumentParser(prog="callcenter", description="AI contact center")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (run, up, database, config_check, chat):
        module.register(sub)
    for ep in entry_points(group="callcenter.cli"):
        try:
            ep.load()(sub)
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            print(f"warning: command plugin {ep.name!r} not loaded: {exc}", file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``callcenter`` console script."""
    args = build_parser().parse_args(argv)
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
