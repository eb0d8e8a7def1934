"""Render the effective configuration with every secret masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from callcenter.common.config.model import CallCenterConfig

MASK = "********"


def mask_url(url: str) -> str:
    """Hide the password in a URL such as ``postgresql://user:pw@host/db``."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def masked_config(config: CallCenterConfig) -> dict[str, Any]:
    """The config as plain data, secrets replaced by a mask and URL passwords hidden."""
    data = config.model_dump(mode="python")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        if hasattr(node, "get_secret_value"):
            return MASK if node.get_secret_value() else None
        if isinstance(node, str) and "://" in node:
            return mask_url(node)
        return node

    return walk(data)
