"""Explicit wiring (issue 14): what the areas ask of each other at run time (payment purposes, GDPR erasure
steps, the card-in-use question) and the settings are built once at start-up and passed explicitly; no module
keeps them in a global, no module registers anything as a side effect of being imported."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from web.platform.db import transaction

ROOT = Path(__file__).resolve().parents[3]


def _web_modules() -> list[Path]:
    return sorted((ROOT / "web").rglob("*.py"))


def _globals_and_process_state(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Global):
            found.append(f"{where}: global {', '.join(node.names)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "web.platform.app_state":
            found.append(f"{where}: imports web.platform.app_state")
        elif isinstance(node, ast.Import) and any(a.name == "web.platform.app_state" for a in node.names):
            found.append(f"{where}: imports web.platform.app_state")
        elif isinstance(node, ast.ImportFrom) and node.module == "web.platform" and any(
                a.name == "app_state" for a in node.names):
            found.append(f"{where}: imports web.platform.app_state")
    return found


def test_web_has_no_global_statement_and_no_process_wide_settings():
    found = [line for path in _web_modules() for line in _globals_and_process_state(path)]
    assert found == [], "pass the value explicitly (web/purposes.py, app.state + dependency injection):\n" + "\n".join(found)
    assert not (ROOT / "web" / "platform" / "app_state.py").exists()


def test_the_check_sees_a_global(tmp_path: Path):
    module = ROOT / "web" / "_wiring_probe.py"
    assert not module.exists()
    try:
        module.write_text("from web.platform.app_state import x\n\ndef f():\n    global y\n", encoding="utf-8")
        assert len(_globals_and_process_state(module)) == 2
    finally:
        module.unlink()


def test_importing_every_area_registers_no_payment_purpose():
    """No registry is filled at import: the payments area has no module-level table of handlers left."""
    import web.app  # noqa: F401  (imports every area)
    from web.payment_records import service as records

    for name in ("SETTLE", "REVERSALS", "CARD_SAVED", "register_purpose"):
        assert not hasattr(records, name), name


def test_payment_purposes_are_one_immutable_value_built_from_the_settings(settings):
    from web.purposes import payment_purposes

    purposes = payment_purposes(settings)
    assert set(purposes.handlers) == {"5p1_month", "purse_topup", "card_deposit"}
    with pytest.raises(TypeError):
        purposes.handlers["other"] = purposes.handlers["5p1_month"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        purposes.handlers = {}  # type: ignore[misc]
    assert payment_purposes(settings).handlers.keys() == purposes.handlers.keys()  # built again: nothing accumulates


def test_the_app_hands_the_purposes_it_built_to_every_handler(app):
    from web.app import provide_card_in_use, provide_erasure_steps, provide_purposes
    from web.purposes import gdpr_erasure_steps

    assert provide_purposes(app.state) is app.state.purposes
    assert provide_erasure_steps(app.state) == gdpr_erasure_steps()
    assert provide_card_in_use(app.state) is app.state.card_in_use


def test_handlers_get_the_gateway_by_injection_not_from_the_app_state(app):
    from web.app import provide_gateway

    assert provide_gateway(app.state) is app.state.payments.gateway
    reaching = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "web").rglob("*.py"))
                if path.parent.name not in ("platform",) and path.name not in ("app.py", "jobs.py", "cli.py")
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if "state.payments" in line]
    assert reaching == []


def test_r_pay_1_a_payment_of_a_purpose_nobody_handles_is_refused_and_stays_unapplied(engine, db):
    """As before the registry went: a wiring error (RuntimeError), the transaction rolls back, the payment stays
    pending and is applied when reported again by a process that knows its purpose."""
    from web.payment_records import service as records

    with transaction(engine) as session:
        records.create_payment_record(session, reference="mystery-1", purpose="mystery", subject_id=1, user_id=None,
                                      kind="hosted", amount=100)
    with pytest.raises(RuntimeError, match="no handler for payments of purpose 'mystery'"):
        with transaction(engine) as session:
            records.apply_outcome(session, records.PaymentPurposes({}), records.Outcome("mystery-1", "paid", amount=100),
                                  "webhook")
    with transaction(engine) as session:
        payment = records.payment_by_reference(session, "mystery-1")
        assert payment is not None and payment.status == "pending" and payment.applied_at is None
