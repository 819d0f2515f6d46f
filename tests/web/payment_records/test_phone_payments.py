"""Issue 15 item 4, payments that read clearly, through HTTP with the embedded sandbox (SQLite and
PostgreSQL): after a declined or cancelled first payment one message and one next step; no "payment
failed" mail when the passenger pressed cancel; the success page links straight to the ticket; the payment
history with a confirmation per payment that only its owner can open."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import Browser, Outbox, page_text
from tests.support.shop import (  # noqa: F401
    DECLINED_CARD,
    GOOD_CARD,
    Purchase,
    Shop,
    add_card,
    settings_env,
    shop,
)
from web.five_plus_one.models import SubscriptionMonthRow
from web.tickets.models import Ticket

FAILURE_SUBJECT = "Nie udało się pobrać opłaty za bilet 5+1"


def cancel_on_payment_page(shop: Shop, browser: Browser, purchase: Purchase) -> Purchase:
    """The passenger presses "Anuluj" on the (sandbox) payment page and comes back."""
    response = browser.client.post(purchase.pay_path, data={"action": "cancel"}, follow_redirects=False)
    assert response.status_code == 303
    parts = urlsplit(response.headers["location"])
    purchase.return_path = parts.path + (f"?{parts.query}" if parts.query else "")
    return purchase  # Tpay sends no notification for a payment that was not paid: the return page asks


def alerts(html: str) -> list[str]:
    return [page_text(a) for a in re.findall(r'<(?:div|p)[^>]*class="alert[^"]*"[^>]*>(.*?)</(?:div|p)>', html, re.DOTALL)]


def test_r_5p1_4_a_cancelled_first_payment_says_so_once_offers_one_next_step_and_mails_nothing(
        shop: Shop, browser: Browser, mails: Outbox, db: Any) -> None:
    user, card = shop.resident(browser)
    purchase = cancel_on_payment_page(shop, browser, shop.buy(browser, card))
    back = page_text(shop.come_back(browser, purchase).text)
    assert shop.payment(purchase.reference).status == "failed"
    assert "Płatność anulowana" in back and "Nie pobraliśmy pieniędzy" in back
    assert "Płatność nieudana" not in back and "Wróć i spróbuj ponownie" in back

    tab = browser.get("/5plus1").text
    assert len(alerts(tab)) == 1, alerts(tab)
    assert "Płatność za pierwszy miesiąc została anulowana" in alerts(tab)[0]
    assert page_text(tab).count("Spróbuj ponownie") == 1
    assert "Pierwsza płatność nie została jeszcze potwierdzona" not in page_text(tab)
    assert FAILURE_SUBJECT not in [m.subject for m in mails.to(user.email)]

    # The one next step: straight to the payment page again, and this time it goes through.
    month = db.one(SubscriptionMonthRow)
    again = browser.submit("/5plus1", {}, action=f"/5plus1/pay/{month.id}")
    assert again.status_code == 303 and "/sandbox-pay/pay/" in again.headers["location"]
    tx_id = urlsplit(again.headers["location"]).path.rsplit("/", 1)[1]
    retry = Purchase(shop.sandbox.store.transaction(tx_id)["reference"], tx_id, urlsplit(again.headers["location"]).path)
    shop.pay(browser, retry, GOOD_CARD)
    shop.wait_delivered(retry.transaction_id)
    shop.wait_applied(retry.reference)
    assert db.one(SubscriptionMonthRow).state == "paid" and db.count(Ticket) == 1


def test_r_5p1_4_a_declined_first_payment_is_one_message_and_one_next_step(shop: Shop, browser: Browser, mails: Outbox) -> None:
    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card), DECLINED_CARD)
    back = page_text(shop.come_back(browser, purchase).text)  # no notification for a decline: the return page asks
    assert "Płatność nieudana" in back and back.count("spróbuj ponownie") + back.count("Spróbuj ponownie") == 1
    tab = browser.get("/5plus1").text
    assert len(alerts(tab)) == 1 and "nie powiodła się" in alerts(tab)[0]
    assert page_text(tab).count("Spróbuj ponownie") == 1
    assert FAILURE_SUBJECT in [m.subject for m in mails.to(user.email)]  # the bank said no: the mail says so


def test_r_5p1_4_an_unfinished_first_payment_offers_to_resume_it(shop: Shop, browser: Browser) -> None:
    _user, card = shop.resident(browser)
    purchase = shop.buy(browser, card)  # went to the payment page, came back without paying
    tab = browser.get("/5plus1").text
    assert len(alerts(tab)) == 1 and "nie została dokończona" in alerts(tab)[0]
    assert f'href="http://testserver.local{purchase.pay_path}"' in tab or f'{purchase.pay_path}"' in tab
    assert page_text(tab).count("Dokończ płatność") == 1


def test_the_success_page_links_straight_to_the_ticket(shop: Shop, browser: Browser, db: Any) -> None:
    _user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card), GOOD_CARD)
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    page = shop.come_back(browser, purchase).text
    assert "Płatność przyjęta" in page
    ticket = db.one(Ticket)
    assert ('href="/tickets"' in page and "Zobacz bilet" in page_text(page)) or f'href="/tickets/{ticket.id}/show"' in page
    assert f'href="/payments/{purchase.reference}/confirmation"' in page


def test_payment_history_with_a_confirmation_only_its_owner_can_open(shop: Shop, browser: Browser, new_browser: Any) -> None:
    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card), GOOD_CARD)
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    history = browser.get("/payments")
    text = page_text(history.text)
    assert history.status_code == 200 and "Historia płatności" in text
    assert "miesiąc 1 z 6" in text and "zapłacono" in text
    confirmation_path = f"/payments/{purchase.reference}/confirmation"
    assert f'href="{confirmation_path}"' in history.text
    document = browser.get(confirmation_path)
    doc = page_text(document.text)
    assert document.status_code == 200 and "Potwierdzenie płatności" in doc
    assert user.email in doc and purchase.reference in doc and "zapłacono" in doc
    download = browser.get(confirmation_path + "?download=1")
    assert download.headers["content-disposition"] == f'attachment; filename="potwierdzenie-{purchase.reference.replace(":", "-")}.html"'

    other = new_browser()
    shop.users.create("anna@example.pl")
    other.login("anna@example.pl")
    assert other.get(confirmation_path).status_code == 404
    assert other.get("/payments/nonexistent/confirmation").status_code == 404
    assert purchase.reference not in other.get("/payments").text
    anonymous = new_browser()
    assert anonymous.get(confirmation_path, follow_redirects=False).status_code == 303
