"""The built-in Tpay-style payment sandbox (a separate ASGI app; see `docs/payments.md`)."""

from .app import Sandbox, SandboxSettings, settings_from_env, standalone_app
from .cards import TEST_CARDS, CardBehaviour, TestCard

__all__ = ["TEST_CARDS", "CardBehaviour", "Sandbox", "SandboxSettings", "TestCard", "settings_from_env", "standalone_app"]
