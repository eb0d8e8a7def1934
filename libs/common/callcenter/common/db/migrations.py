"""SQL migrations, tracked in ``schema_migrations`` and applied in order, once.

Each package that owns tables registers its folder of ``NNNN_name.sql`` files under the
``callcenter.migrations`` entry-point group (value: a package holding the files). This package's
own folder comes first, then the others in :data:`ORDER`. A migration runs in a transaction, under
an advisory lock so concurrent ``callcenter migrate`` runs are safe; an applied file whose text
changed is an error, not a silent re-run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points

import asyncpg

from callcenter.common.logging import get_logger

log = get_logger(__name__)

ORDER = ["common", "tools", "conversation", "gateway", "voice_pipeline", "post_call"]
_LOCK_KEY = 0x43414C4C  # "CALL"


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file."""

    owner: str
    name: str
    sql: str

    @property
    def version(self) -> str:
        """Unique key: owner and file name."""
        return f"{self.owner}:{self.name}"

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations() -> list[Migration]:
    """Every registered migration, in apply order."""
    packages: dict[str, str] = {"common": "callcenter.common.db.sql"}
    for ep in entry_points(group="callcenter.migrations"):
        packages.setdefault(ep.name, ep.value)
    found: list[Migration] = []
    for owner in sorted(packages, key=lambda o: (ORDER.index(o) if o in ORDER else len(ORDER), o)):
        folder = resources.files(packages[owner])
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                found.append(Migration(owner=owner, name=entry.name, sql=entry.read_text()))
    return found


async def applied_migrations(conn: asyncpg.Connection) -> dict[str, str]:
    """Version -> checksum of what is applied."""
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


async def migrate(pool_or_conn: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Apply pending migrations; return the versions applied now (empty when up to date).

    Raises:
        RuntimeError: an applied migration's file was edited afterwards.

    """
    migrations = discover_migrations()
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            return await _migrate(conn, migrations)
    return await _migrate(pool_or_conn, migrations)


async def _migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = await applied_migrations(conn)
        applied: list[str] = []
        for migration in migrations:
            previous = done.get(migration.version)
            if previous is not None:
                if previous != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            log.info("migration applied", version=migration.version)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
