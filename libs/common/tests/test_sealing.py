"""One-time codes cross the bus sealed: only the same key, for the same event, opens them."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from callcenter.common.config import CallCenterConfig
from callcenter.common.sealing import SealError, code_context, seal, sealing_key, unseal


def _key(config: CallCenterConfig, secret: str) -> bytes:
    notifications = config.notifications.model_copy(update={"code_key": SecretStr(secret)})
    key = sealing_key(config.model_copy(update={"notifications": notifications}))
    assert key is not None
    return key


def test_a_sealed_code_opens_only_for_its_own_notification_and_key(
    config: CallCenterConfig,
) -> None:
    key = _key(config, "shared-by-tools-and-post-call")
    context = code_context("verification_code-VC-1", "CUS-0001")
    sealed = seal(key, "482913", context=context)

    assert "482913" not in sealed
    assert unseal(key, sealed, context=context) == "482913"
    with pytest.raises(SealError):  # copied into another customer's notification
        unseal(key, sealed, context=code_context("verification_code-VC-1", "CUS-0002"))
    with pytest.raises(SealError):  # another deployment's key
        unseal(_key(config, "someone-else"), sealed, context=context)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        unseal(key, tampered, context=context)


def test_no_secret_anywhere_means_no_key(config: CallCenterConfig) -> None:
    bare = config.model_copy(
        update={
            "notifications": config.notifications.model_copy(update={"code_key": None}),
            "gateway": config.gateway.model_copy(update={"session_secret": None}),
            "twilio": config.twilio.model_copy(update={"auth_token": None}),
        }
    )
    assert sealing_key(bare) is None
