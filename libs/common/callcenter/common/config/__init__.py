"""Configuration: ``config.yaml`` defaults, overridden by secret files, ``.env`` and the environment."""

from callcenter.common.config.masking import masked_config
from callcenter.common.config.model import CallCenterConfig, MissingConfigError, load_config

__all__ = ["CallCenterConfig", "MissingConfigError", "load_config", "masked_config"]
