"""Configuration: ``config.yaml`` defaults, overridden by secret files, ``.env`` and the environment."""

from callcenter.common.config.masking import masked_config
from callcenter.common.config.model import (
    CallCenterConfig,
    MissingConfigError,
    first_secret,
    load_config,
)

__all__ = ["CallCenterConfig", "MissingConfigError", "first_secret", "load_config", "masked_config"]
