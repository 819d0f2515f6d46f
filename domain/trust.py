"""Where test machinery ends and real money begins (RULES.md R-PAY-5; the device simulators).

Pure: no I/O, no clock. The web layer asks these before it serves a sandbox or lets a simulator act.

- R-PAY-5 No test money in production: a production instance takes real payments only; the sandbox
  there needs an explicit opt-in and is then announced on every page.
- Simulators: a simulator device (the validator and parking-meter simulators in the app) acts only on
  demo cards (loaded by `ekp demo load`) or on no card at all ("karta obca"); a real card's money is
  never within its reach. Its credential is never handed to a browser, so the device API refuses it.
"""

from __future__ import annotations

SANDBOX_IN_PRODUCTION = "payments.sandbox_in_production"


def sandbox_refusal(env: str, payments: str, opted_in: bool) -> str | None:
    """R-PAY-5: why this payment configuration may not run (a problem code), or None when it may."""
    if env == "production" and payments == "sandbox" and not opted_in:
        return SANDBOX_IN_PRODUCTION
    return None


def announces_test_money(env: str, payments: str) -> bool:
    """R-PAY-5: every page says that payments are not real (a production instance running the sandbox)."""
    return env == "production" and payments == "sandbox"


def simulator_may_use(card_number_given: bool, card_is_demo: bool) -> bool:
    """A simulator may act on a demo card, or with no city card at all; never on any other card number
    (a real card, or a number no card has yet: one could be issued a moment later)."""
    return not card_number_given or card_is_demo
