"""The gateway's SQL migrations (``NNNN_name.sql``), registered under ``callcenter.migrations``."""
