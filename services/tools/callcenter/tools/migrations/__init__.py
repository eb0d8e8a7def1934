"""SQL migrations of the tools service (the retail domain), applied by ``callcenter migrate``."""
