"""One module per skill; importing this package imports (and so registers) every one of them.

Adding a skill is adding a module here: see ``services/tools/README.md``.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
