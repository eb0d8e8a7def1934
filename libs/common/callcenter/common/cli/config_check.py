"""``callcenter config check``: validate and print the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import sys

import yaml

from callcenter.common.config import MissingConfigError, load_config, masked_config
from callcenter.common.config.voice_gaps import voice_gaps


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``config`` command."""
    parser = sub.add_parser("config", help="configuration tools")
    config_sub = parser.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("check", help="validate and print the effective config").set_defaults(
        func=_check
    )


def _check(_: argparse.Namespace) -> int:
    try:
        config = load_config()
    except MissingConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"configuration invalid:\n{exc}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump(masked_config(config), sort_keys=False))
    for gap in voice_gaps(config):
        print(f"# warning: voice calls cannot work: {gap}", file=sys.stderr)
    print("# configuration OK", file=sys.stderr)
    return 0
