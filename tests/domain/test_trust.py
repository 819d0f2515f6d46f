"""R-PAY-5 and the simulators' trust boundary, as pure rules."""

from __future__ import annotations

import pytest

from domain.trust import SANDBOX_IN_PRODUCTION, announces_test_money, sandbox_refusal, simulator_may_use


@pytest.mark.parametrize(("env", "payments", "opted_in", "refused"), [
    ("production", "sandbox", False, True),
    ("production", "sandbox", True, False),
    ("production", "tpay", False, False),
    ("development", "sandbox", False, False),
    ("test", "sandbox", False, False),
])
def test_r_pay_5_production_takes_real_payments_unless_opted_in(env, payments, opted_in, refused):
    assert sandbox_refusal(env, payments, opted_in) == (SANDBOX_IN_PRODUCTION if refused else None)


def test_r_pay_5_the_sandbox_in_production_is_announced():
    assert announces_test_money("production", "sandbox")
    assert not announces_test_money("production", "tpay")
    assert not announces_test_money("development", "sandbox")


def test_simulators_act_only_on_demo_cards_or_without_a_card():
    assert simulator_may_use(card_number_given=False, card_is_demo=False)
    assert simulator_may_use(card_number_given=True, card_is_demo=True)
    assert not simulator_may_use(card_number_given=True, card_is_demo=False)
