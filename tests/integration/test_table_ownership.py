"""Each table has one owning service: no other service's code spells SQL against it.

The owner is the service whose migrations create the table. Outside it, the owner's query module
(``libs/common/callcenter/common/queries/<owner>.py``) is the only place that may name the table;
the tables libs/common creates (``calls``, ``tickets``, …) are shared.
"""

from __future__ import annotations

import re
from pathlib import Path

from callcenter.common.db.migrations import discover_migrations

ROOT = Path(__file__).resolve().parents[2]
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)


def _owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for migration in discover_migrations():
        for table in _CREATE.findall(migration.sql):
            owners.setdefault(table, migration.owner)
    return owners


def _sql_naming(table: str) -> re.Pattern[str]:
    return re.compile(rf"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+{table}\b")  # SQL is upper case


def _code_of(owner: str) -> list[Path]:
    if owner == "common":
        folder = ROOT / "libs/common/callcenter/common"
        return [p for p in folder.rglob("*.py") if "queries" not in p.parts]
    return sorted((ROOT / "services" / owner / "callcenter" / owner).rglob("*.py"))


def test_no_service_runs_sql_on_a_table_another_service_owns() -> None:
    owners = _owners()
    assert owners.get("summaries") == "post_call" and owners.get("calls") == "common", owners
    services = ["common", *sorted(p.name for p in (ROOT / "services").iterdir() if p.is_dir())]
    trespass = []
    for service in services:
        for path in _code_of(service):
            text = path.read_text()
            for table, owner in owners.items():
                if owner in ("common", service):
                    continue
                for match in _sql_naming(table).finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    trespass.append(f"{path.relative_to(ROOT)}:{line} {table} (owner {owner})")
    assert trespass == []


def test_a_query_module_serves_only_its_owner_s_tables() -> None:
    owners = _owners()
    for module in (ROOT / "libs/common/callcenter/common/queries").glob("*.py"):
        if module.stem == "__init__":
            continue
        text = module.read_text()
        foreign = {
            table
            for table, owner in owners.items()
            if owner not in ("common", module.stem) and _sql_naming(table).search(text)
        }
        assert foreign == set(), module.name
