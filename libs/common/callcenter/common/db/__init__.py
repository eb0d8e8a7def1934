"""PostgreSQL: pool, migrations and demo seed data."""

from callcenter.common.db.migrations import discover_migrations, migrate
from callcenter.common.db.pool import create_pool, ping
from callcenter.common.db.seed import seed

__all__ = ["create_pool", "discover_migrations", "migrate", "ping", "seed"]
