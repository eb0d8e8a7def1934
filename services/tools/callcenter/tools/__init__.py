"""The tools service: the skill registry and executor behind ``tools.list`` and ``tools.call``.

Importing the package registers every skill in :mod:`callcenter.tools.skills`, so
:data:`TOOLS_REGISTRY` and :data:`TOOLS_SCHEMA` are complete.
"""

from callcenter.tools import skills  # noqa: F401,I001  (registers every skill)
from callcenter.tools.registry import TOOLS_REGISTRY, TOOLS_SCHEMA

__all__ = ["TOOLS_REGISTRY", "TOOLS_SCHEMA"]
