"""The Kołobrzeg card's whole life through HTTP, on SQLite and PostgreSQL (issue 16): apply online with a photo
(R-KKM-1, R-KKM-3), the deposit through the payments port (R-KKM-2), the status page and its mails, the desk's
queue, collection into Portmonetka and a tap on the validator, giving up with the refund, the job invalidating
uncollected cards (R-KKM-4), reminders (R-KKM-5, R-KKM-6), photos encrypted and deleted, GDPR erasure; and every
kind of bad upload refused next to the field with nothing stored."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from tests.support import travel_to_day
from tests.conftest import field_errors, page_text
from tests.support.purse import make_card, purse_tariff, tap, tap_body
from web.platform.settings import demo_operator
from web.purposes import payment_purposes
from web.platform import clock as web_clock
from web.card_applications import photos
from web.card_applications import service
from web.platform.db import transaction
from web.card_applications.models import CardApplicationEvent, CardApplicationRow
from web.payment_records.models import Payment
from web.purse.models import PurseCardRow
from web.payment_records import service as records
from web.purse import service as purse_service

OPERATOR = demo_operator()  # the operator profile the test settings load (shown in the mails)


def jpeg(width: int = 800, height: int = 600, *, exif: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 40))
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x010F] = "PhoneMaker"  # Make
        data[0x8825] = {2: (52.0, 10.0, 0.0)}  # GPS latitude
        image.save(out, "JPEG", exif=data)
    else:
        image.save(out, "JPEG")
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600)).save(out, "PNG")
    return out.getvalue()


def bomb() -> bytes:
    """A small JPEG whose header claims 60000×60000 pixels (3.6 gigapixels)."""
    data = bytearray(jpeg(400, 300))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    return bytes(data)


def apply(browser, *, fare: str = "normal", photo: bytes | None = None, name: str = "photo.jpg", scan: bytes | None = None,
          **fields: str):
    browser.get("/card-applications/new")
    data = {"fare": fare, "service_point": "solna", **fields}
    files = {}
    if photo is not None:
        files["photo"] = (name, photo, "image/jpeg")
    if scan is not None:
        files["scan"] = ("scan.jpg", scan, "image/jpeg")
    return browser.post("/card-applications/new", data, files=files or None)


def applications(engine) -> list[CardApplicationRow]:
    with transaction(engine) as session:
        rows = list(session.scalars(select(CardApplicationRow).order_by(CardApplicationRow.id)))
        for row in rows:
            session.expunge(row)
        return rows


def pay_deposit(engine, purposes, application_id: int) -> Payment:
    with transaction(engine) as session:
        payment = session.scalars(select(Payment).where(Payment.purpose == service.PURPOSE,
                                                        Payment.subject_id == application_id)).one()
        outcome = records.Outcome(reference=payment.reference, status="paid", amount=payment.amount)
    for _ in range(2):  # the webhook and the return page: applied once
        with transaction(engine) as session:
            records.apply_outcome(session, purposes, outcome, "webhook")
    with transaction(engine) as session:
        found = session.get(Payment, payment.id)
        session.expunge(found)
        return found


def staff_browser(new_browser, users):  # type: ignore[no-untyped-def]
    users.create("bok@example.pl", role="staff", pesel=None)
    desk = new_browser(ip="10.0.0.9")
    desk.login("bok@example.pl")
    return desk


# --------------------------------------------------------------------------- apply and pay


def test_r_kkm_3_apply_online_with_a_photo_and_pay_the_deposit_in_the_sandbox(logged_in, engine, settings, mails, purposes):
    browser, user = logged_in
    sent = apply(browser, photo=jpeg(1200, 900, exif=True))
    assert sent.status_code == 303 and "/sandbox-pay/" in sent.headers["location"]
    [row] = applications(engine)
    assert (row.status, row.deposit, row.applied_on) == (service.AWAITING_DEPOSIT, 1200, None)
    # The photo is encrypted at rest; decrypted, it is the cropped print (5:6) without EXIF or GPS.
    assert row.photo is not None and photos.JPEG_MAGIC not in row.photo[:16]
    printed = Image.open(io.BytesIO(photos.decrypt(settings.photo_key, row.id, "photo", row.photo)))
    assert printed.format == "JPEG" and printed.width * 6 == printed.height * 5
    assert not printed.getexif() and b"PhoneMaker" not in photos.decrypt(settings.photo_key, row.id, "photo", row.photo)
    shown = browser.get(f"/card-applications/{row.id}/photo")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert "no-store" in shown.headers["cache-control"]

    payment = pay_deposit(engine, purposes, row.id)
    assert payment.status == "paid"
    [row] = applications(engine)
    today = web_clock.to_local(web_clock.now()).date()
    assert (row.status, row.applied_on, row.deposit_payment_id) == (service.SUBMITTED, today, payment.id)
    assert row.collect_by is not None and row.ready_by is not None and row.ready_by < row.collect_by
    text = page_text(browser.get(f"/card-applications/{row.id}").text)
    assert "złożony" in text and f"Odbierz do {row.collect_by:%d.%m.%Y}" in text
    assert mails.last(user.email).subject == "Wniosek o kartę KKM złożony"


def test_r_kkm_2_free_ride_card_is_submitted_without_a_deposit(logged_in, engine):
    browser, _user = logged_in
    sent = apply(browser, fare="free", photo=jpeg(), entitlement_document="at_desk")
    assert sent.status_code == 303 and sent.headers["location"].startswith("/card-applications/")
    [row] = applications(engine)
    assert (row.status, row.deposit) == (service.SUBMITTED, 0)
    with transaction(engine) as session:
        assert session.scalars(select(Payment)).first() is None


def test_r_kkm_3_reduced_card_needs_the_entitlement_document_or_the_promise_to_show_it(logged_in, engine):
    browser, _user = logged_in
    refused = apply(browser, fare="off_50", photo=jpeg())
    assert refused.status_code == 422
    assert field_errors(refused.text, "entitlement_document")
    refused = apply(browser, fare="off_50", photo=jpeg(), entitlement_document="scan")
    assert field_errors(refused.text, "scan") == ["Dołącz skan dokumentu uprawniającego do ulgi (JPEG lub PDF)."]
    assert applications(engine) == []
    until = web_clock.today() + timedelta(days=365)
    far = apply(browser, fare="off_50", photo=jpeg(), entitlement_document="scan", scan=jpeg(1000, 700),
                entitlement_until="2099-13-01")
    assert field_errors(far.text, "entitlement_until") == ["Podaj datę w formacie RRRR-MM-DD."]
    sent = apply(browser, fare="off_50", photo=jpeg(), entitlement_document="scan", scan=jpeg(1000, 700),
                 entitlement_until=until.isoformat())
    assert sent.status_code == 303
    [row] = applications(engine)
    assert row.scan is not None and row.scan_type == "image/jpeg" and row.entitlement_until == until


def test_r_kkm_1_only_one_personal_card_a_second_application_is_refused(logged_in, engine, settings):
    browser, _user = logged_in
    assert apply(browser, photo=jpeg()).status_code == 303
    second = apply(browser, photo=jpeg())
    assert second.status_code == 422
    assert "tylko jedną kartę imienną" in field_errors(second.text, "fare")[0]
    assert len(applications(engine)) == 1
    assert apply(browser, fare="bearer").status_code == 303  # a bearer card is not limited


def test_r_kkm_1_a_held_personal_card_refuses_the_application(logged_in, engine, settings):
    browser, _user = logged_in
    make_card(engine, settings, "70030001")  # personal, registered with the account's PESEL
    refused = apply(browser, photo=jpeg())
    assert refused.status_code == 422 and "Masz już kartę imienną KKM" in field_errors(refused.text, "fare")[0]
    assert applications(engine) == []


# --------------------------------------------------------------------------- bad uploads


@pytest.mark.parametrize(("photo", "name", "message"), [
    (b"", "photo.jpg", "Dołącz zdjęcie w formacie JPEG"),
    (b"%PDF-1.4 not a photo", "photo.jpg", "To nie jest zdjęcie JPEG"),
    (png(), "photo.jpg", "To nie jest zdjęcie JPEG"),
    (b"<html><script>alert(1)</script></html>", "photo.jpg", "To nie jest zdjęcie JPEG"),
    (b"\xff\xd8\xff\xe0 broken jpeg", "photo.jpg", "To nie jest zdjęcie JPEG"),
    (jpeg(300, 200), "photo.jpg", "Zdjęcie jest za małe"),
    (jpeg(319, 240), "photo.jpg", "Zdjęcie jest za małe"),
    (bomb(), "photo.jpg", "Zdjęcie ma zbyt wiele pikseli"),
    (jpeg() + b"\0" * (photos.MAX_UPLOAD + 1), "photo.jpg", "Zdjęcie jest za duże"),
])
def test_r_kkm_3_bad_photo_is_refused_next_to_the_field_and_nothing_is_stored(logged_in, engine, photo, name, message):
    browser, _user = logged_in
    refused = apply(browser, photo=photo, name=name)
    assert refused.status_code == 422
    [error] = field_errors(refused.text, "photo")
    assert error.startswith(message)
    assert applications(engine) == []
    with transaction(engine) as session:
        assert session.scalars(select(Payment)).first() is None


def test_r_kkm_3_a_body_larger_than_allowed_is_refused_before_it_is_read(logged_in, engine):
    browser, _user = logged_in
    refused = apply(browser, photo=b"\xff\xd8\xff" + b"\0" * (2 * photos.MAX_UPLOAD + 100_000))
    assert refused.status_code == 303 and refused.headers["location"] == "/card-applications/new?too_big=1"
    shown = browser.get(refused.headers["location"])
    assert shown.status_code == 413
    assert field_errors(shown.text, "photo") == ["Wysłane pliki są za duże: każdy plik może mieć najwyżej 5 MB."]
    assert applications(engine) == []


def test_r_kkm_3_the_jpeg_portrait_240x320_qualifies():
    cleaned = Image.open(io.BytesIO(photos.clean_photo(jpeg(240, 320))))
    assert cleaned.size == (240, 288)


# --------------------------------------------------------------------------- the desk and collection


def test_r_kkm_4_desk_accepts_makes_and_hands_over_the_card_which_rides_at_its_fare(
        logged_in, new_browser, users, engine, client, mails, purposes):
    browser, user = logged_in
    apply(browser, fare="off_50", photo=jpeg(), entitlement_document="at_desk")
    [row] = applications(engine)
    pay_deposit(engine, purposes, row.id)
    desk = staff_browser(new_browser, users)
    queue = page_text(desk.get("/desk/card-applications?filter=new").text)
    assert "Jan Kowalski" in queue
    assert desk.get(f"/desk/card-applications/{row.id}/photo").headers["content-type"] == "image/jpeg"
    assert browser.get(f"/desk/card-applications/{row.id}").status_code == 403  # passengers: not the desk

    # Returned with a reason, then accepted.
    empty = desk.submit(f"/desk/card-applications/{row.id}", {"reason": " "}, action=f"/desk/card-applications/{row.id}/return")
    assert empty.status_code == 422 and field_errors(empty.text, "reason") == ["Podaj powód zwrotu wniosku."]
    returned = desk.submit(f"/desk/card-applications/{row.id}", {"reason": "Zdjęcie nieostre"},
                           action=f"/desk/card-applications/{row.id}/return")
    assert returned.status_code == 303
    assert "Zdjęcie nieostre" in page_text(browser.get(f"/card-applications/{row.id}").text)
    assert "Zdjęcie nieostre" in mails.last(user.email).text
    assert desk.submit(f"/desk/card-applications/{row.id}", {}, action=f"/desk/card-applications/{row.id}/accept").status_code == 303
    again = desk.submit(f"/desk/card-applications/{row.id}", {"reason": "x"}, action=f"/desk/card-applications/{row.id}/accept")
    assert again.status_code == 409  # accepted already: nothing more happens

    bad = desk.submit(f"/desk/card-applications/{row.id}", {"number": "12ab"}, action=f"/desk/card-applications/{row.id}/made")
    assert field_errors(bad.text, "number") == ["Numer karty to od 4 do 20 cyfr."]
    made = desk.submit(f"/desk/card-applications/{row.id}", {"number": "70040001"}, action=f"/desk/card-applications/{row.id}/made")
    assert made.status_code == 303
    text = page_text(browser.get(f"/card-applications/{row.id}").text)
    assert "gotowa do odbioru: BOK, ul. Solna 2" in text
    assert mails.last(user.email).subject == "Karta KKM gotowa do odbioru"

    no_id = desk.submit(f"/desk/card-applications/{row.id}", {}, action=f"/desk/card-applications/{row.id}/collected")
    assert no_id.status_code == 422 and field_errors(no_id.text, "identity_checked")
    no_doc = desk.submit(f"/desk/card-applications/{row.id}", {"identity_checked": "on"},
                         action=f"/desk/card-applications/{row.id}/collected")
    assert field_errors(no_doc.text, "entitlement_shown")
    handed = desk.submit(f"/desk/card-applications/{row.id}", {"identity_checked": "on", "entitlement_shown": "on"},
                         action=f"/desk/card-applications/{row.id}/collected")
    assert handed.status_code == 303
    with transaction(engine) as session:
        card = session.scalars(select(PurseCardRow).where(PurseCardRow.number == "70040001")).one()
        assert (card.account_id, card.registered_fare, card.holder_name) == (user.id, "off_50", "Jan Kowalski")
        events = [e.status for e in session.scalars(select(CardApplicationEvent).order_by(CardApplicationEvent.id))]
    assert events == ["awaiting_deposit", "submitted", "returned", "accepted", "ready", "collected"]
    assert "70040001" in page_text(browser.get("/purse").text)

    with transaction(engine) as session:
        credential = purse_service.add_device(session, "validator", "Kasownik")[1]
        purse_service.top_up_at_service_point(session, "70040001", 1000, tariff=purse_tariff())
    tapped = tap(client, credential, "70040001").json()
    assert tapped["accepted"] and tapped["amount"] == 140  # 50 % off the city fare (2,80 zł)


def test_r_kkm_4_not_collected_in_30_days_is_invalidated_once_and_the_deposit_kept(logged_in, engine, settings, clock, mails, purposes):
    browser, user = logged_in
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    pay_deposit(engine, purposes, row.id)
    [row] = applications(engine)
    with transaction(engine) as session:
        service.accept(session, 1, row.id, None, operator=OPERATOR)
        service.card_made(session, 1, row.id, "70040002", None, operator=OPERATOR)
    travel_to_day(row.collect_by)  # the last day: still collectable
    assert service.run_card_jobs(engine, settings).invalidated == 0
    travel_to_day(row.collect_by + timedelta(days=1))
    assert service.run_card_jobs(engine, settings).invalidated == 1
    assert service.run_card_jobs(engine, settings).invalidated == 0  # a second node, or the next run
    [row] = applications(engine)
    assert row.status == service.INVALIDATED and row.closed_at is not None
    assert mails.last(user.email).subject == "Karta KKM unieważniona — nieodebrana w terminie"
    with transaction(engine) as session:
        assert session.get(Payment, row.deposit_payment_id).status == "paid"  # forfeited, not refunded


def test_r_kkm_2_giving_up_before_collection_refunds_the_deposit(logged_in, engine, purposes):
    browser, _user = logged_in
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    payment = pay_deposit(engine, purposes, row.id)
    unconfirmed = browser.submit(f"/card-applications/{row.id}", {}, action=f"/card-applications/{row.id}/give-up")
    assert unconfirmed.status_code == 422
    done = browser.submit(f"/card-applications/{row.id}", {"confirm": "on"}, action=f"/card-applications/{row.id}/give-up")
    assert done.status_code == 303
    [row] = applications(engine)
    assert row.status == service.WITHDRAWN
    with transaction(engine) as session:
        assert session.get(Payment, payment.id).status in ("refund_due", "refunded")
    # A deposit paid again for it afterwards is not kept either (R-PAY-4).
    assert browser.submit(f"/card-applications/{row.id}", {"confirm": "on"},
                          action=f"/card-applications/{row.id}/give-up").status_code == 409


def test_a_deposit_paid_after_giving_up_goes_back(logged_in, engine, purposes):
    browser, _user = logged_in
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    browser.submit(f"/card-applications/{row.id}", {"confirm": "on"}, action=f"/card-applications/{row.id}/give-up")
    payment = pay_deposit(engine, purposes, row.id)
    assert payment.status == "refund_due"
    assert applications(engine)[0].status == service.WITHDRAWN


# --------------------------------------------------------------------------- personal data


def test_photos_are_deleted_after_the_stated_time_and_gdpr_erasure_takes_the_applications(logged_in, engine, settings, clock):
    browser, user = logged_in
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    browser.submit(f"/card-applications/{row.id}", {"confirm": "on"}, action=f"/card-applications/{row.id}/give-up")
    clock.travel(timedelta(days=settings.card_photo_days - 1))
    assert service.run_card_jobs(engine, settings).photos_deleted == 0
    clock.travel(timedelta(days=2))
    assert service.run_card_jobs(engine, settings).photos_deleted == 1
    [row] = applications(engine)
    assert row.photo is None and row.personal_data_deleted_at is not None
    with transaction(engine) as session:
        from web.accounts.models import User
        from web.purposes import gdpr_erasure_steps
        from web.accounts.service import erase_account

        erase_account(session, session.get(User, user.id), None, gdpr_erasure_steps())
    assert applications(engine) == []


# --------------------------------------------------------------------------- reminders


def test_r_kkm_5_and_6_reminders_a_month_and_a_week_ahead_are_sent_once(logged_in, engine, settings, clock, mails):
    browser, user = logged_in
    card_id = make_card(engine, settings, "70030009")
    with transaction(engine) as session:
        row = session.get(PurseCardRow, card_id)
        row.account_id = user.id
        row.registered_fare = "off_50"
        row.entitlement_until = web_clock.to_local(web_clock.now()).date() + timedelta(days=20)
    assert service.run_card_jobs(engine, settings).reminders == 1  # the entitlement ends within a month
    assert service.run_card_jobs(engine, settings).reminders == 0
    assert "Ulga na karcie KKM 70030009 kończy się" in mails.last(user.email).subject
    clock.travel(timedelta(days=14))
    assert service.run_card_jobs(engine, settings).reminders == 1  # a week ahead
    assert "jak za bilet normalny" in mails.last(user.email).text


# --------------------------------------------------------------------------- deadlines across holidays


@pytest.mark.parametrize(("today", "ready", "collect"), [
    # Easter Monday 2026-04-06 is not a business day.
    ("2026-04-01T10:00", date(2026, 4, 23), date(2026, 5, 4)),  # 1 May is Friday, 3 May Sunday: 4 May (Monday)
    # 1 and 3 May 2027 (Saturday, Monday) and Corpus Christi 2027-05-27.
    ("2027-04-28T10:00", date(2027, 5, 20), date(2027, 5, 28)),
    # 11 November 2026 (Wednesday).
    ("2026-11-02T10:00", date(2026, 11, 24), date(2026, 12, 2)),
    # 24, 25, 26 December 2025 and 1, 6 January 2026.
    ("2025-12-15T10:00", date(2026, 1, 12), date(2026, 1, 14)),
])
def test_r_kkm_4_deadlines_in_business_days_across_holidays(browser, users, engine, clock, today, ready, collect):
    clock.travel(clock.parse_pin(today) - clock.now())
    users.create()
    browser.login("jan@example.pl")
    apply(browser, fare="free", photo=jpeg(), entitlement_document="at_desk")
    [row] = applications(engine)
    assert (row.applied_on, row.ready_by, row.collect_by) == (date.fromisoformat(today[:10]), ready, collect)


def test_ekp_cards_expire_runs_the_jobs(engine, settings, settings_env, monkeypatch):
    from click.testing import CliRunner

    from web.cli import main

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["cards", "expire"])
    assert result.exit_code == 0, result.output
    assert "0 application(s) invalidated, 0 reminder(s) sent" in result.output


# --------------------------------------------------------------------------- found by the browser path (e2e)


def collect_card(engine, application_id: int, number: str, settings=None) -> None:
    """Desk steps without the pages: accepted, made with `number`, handed over."""
    with transaction(engine) as session:
        service.accept(session, 1, application_id, None, operator=OPERATOR)
        service.card_made(session, 1, application_id, number, None, operator=OPERATOR)
        service.collected(session, 1, application_id, None, operator=OPERATOR, identity_checked=True,
                          entitlement_shown=True, settings=settings)


def test_r_kkm_3_a_card_collected_by_a_demo_account_rides_on_the_validator_simulator(
        browser, new_browser, users, engine, settings, purposes):
    """The e2e run found it: a card a demo passenger applied for was refused by the simulator (real card)."""
    users.create("olena@demo.ekp", pesel=None, first_name="Olena", birth_date=date(1990, 5, 17))
    browser.login("olena@demo.ekp")
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    pay_deposit(engine, purposes, row.id)
    desk = staff_browser(new_browser, users)
    desk.submit(f"/desk/card-applications/{row.id}", {}, action=f"/desk/card-applications/{row.id}/accept")
    desk.submit(f"/desk/card-applications/{row.id}", {"number": "70050001"}, action=f"/desk/card-applications/{row.id}/made")
    handed = desk.submit(f"/desk/card-applications/{row.id}", {"identity_checked": "on"},
                         action=f"/desk/card-applications/{row.id}/collected")
    assert handed.status_code == 303
    with transaction(engine) as session:
        purse_service.top_up_at_service_point(session, "70050001", 1000, tariff=purse_tariff())
    tapped = desk.client.post("/simulators/validator/tap", json=tap_body("70050001"),
                              headers={"x-csrftoken": desk.csrf()})
    assert tapped.status_code == 200 and tapped.json()["accepted"], tapped.text
    assert tapped.json()["balance"] == 720


def test_a_card_collected_by_anyone_else_stays_off_the_simulators(logged_in, engine, settings, purposes):
    browser, _user = logged_in
    apply(browser, photo=jpeg())
    [row] = applications(engine)
    pay_deposit(engine, purposes, row.id)
    collect_card(engine, row.id, "70050002", settings)
    with transaction(engine) as session:
        assert session.scalars(select(PurseCardRow.demo).where(PurseCardRow.number == "70050002")).one() is False


# --------------------------------------------------------------------------- R-KKM-8 data changes


def _collected_card(browser, engine, settings, fare: str = "normal", number: str = "70060001", **fields: str):
    apply(browser, fare=fare, photo=jpeg(), **fields)
    [row] = applications(engine)
    if row.deposit:
        pay_deposit(engine, payment_purposes(settings), row.id)
    collect_card(engine, row.id, number, settings)
    return applications(engine)[0]


def test_r_kkm_8_a_change_of_the_printed_name_needs_a_new_card_and_a_new_deposit(logged_in, engine, settings, users, purposes):
    browser, user = logged_in
    first = _collected_card(browser, engine, settings)
    with transaction(engine) as session:
        purse_service.top_up_at_service_point(session, "70060001", 1500, tariff=purse_tariff())
        from web.accounts.models import User
        session.get(User, user.id).last_name = "Nowak-Kowalski"  # changed in Moje konto
    nothing = browser.submit(f"/card-applications/{first.id}/change", {"fare": "normal"})
    assert nothing.status_code == 422 and field_errors(nothing.text, "fare")[0].startswith("Nic się nie zmienia")
    bad = browser.submit(f"/card-applications/{first.id}/change", {"fare": "premium", "name": "account"})
    assert bad.status_code == 422 and field_errors(bad.text, "fare") == ["Wybierz rodzaj karty."]
    assert len(applications(engine)) == 1

    sent = browser.submit(f"/card-applications/{first.id}/change", {"fare": "normal", "name": "account"})
    assert sent.status_code == 303 and "/sandbox-pay/" in sent.headers["location"]
    change = applications(engine)[1]
    assert (change.status, change.deposit, change.replaces_card_id, change.new_card) == \
        (service.AWAITING_DEPOSIT, 1200, first.card_id, True)
    assert change.last_name == "Nowak-Kowalski" and change.photo is not None  # the printed photo carried over
    again = browser.submit(f"/card-applications/{first.id}/change", {"fare": "normal", "name": "account"})
    assert again.status_code == 409 and "już czeka" in field_errors(again.text, "fare")[0]
    pay_deposit(engine, purposes, change.id)
    collect_card(engine, change.id, "70060002", settings)
    with transaction(engine) as session:
        old = session.scalars(select(PurseCardRow).where(PurseCardRow.number == "70060001")).one()
        new = session.scalars(select(PurseCardRow).where(PurseCardRow.number == "70060002")).one()
        assert (old.balance, old.account_id, old.blocked_from is not None) == (0, None, True)
        assert (new.balance, new.account_id, new.holder_name) == (1500, user.id, "Jan Nowak-Kowalski")
        assert purse_service.ledger_sum(session, new.id) == 1500 and purse_service.ledger_sum(session, old.id) == 0


def test_r_kkm_8_a_change_that_is_not_printed_is_free_and_made_at_the_desk(logged_in, engine, settings):
    browser, _user = logged_in
    first = _collected_card(browser, engine, settings, fare="off_30", entitlement_document="at_desk")
    until = web_clock.today() + timedelta(days=400)
    sent = browser.submit(f"/card-applications/{first.id}/change",
                          {"fare": "off_50", "entitlement_until": until.isoformat()})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/card-applications/")
    change = applications(engine)[1]
    assert (change.status, change.deposit, change.new_card, change.photo) == (service.SUBMITTED, 0, False, None)
    with transaction(engine) as session:
        assert session.scalars(select(Payment).where(Payment.subject_id == change.id)).first() is None
        service.accept(session, 1, change.id, None, operator=OPERATOR)
    [_, change] = applications(engine)
    assert (change.status, change.card_id) == (service.COLLECTED, first.card_id)
    with transaction(engine) as session:
        card = session.get(PurseCardRow, first.card_id)
        assert (card.registered_fare, card.entitlement_until, card.blocked_from) == ("off_50", until, None)


def test_r_kkm_8_a_change_to_a_free_ride_card_is_a_new_card_without_a_deposit(logged_in, engine, settings):
    browser, _user = logged_in
    first = _collected_card(browser, engine, settings)
    sent = browser.submit(f"/card-applications/{first.id}/change", {"fare": "free"})
    assert sent.status_code == 303
    change = applications(engine)[1]
    assert (change.status, change.deposit, change.new_card) == (service.SUBMITTED, 0, True)


# --------------------------------------------------------------------------- R-KKM-2 giving up a collected card


def _bearer_card_of(engine, settings, user_id: int, number: str, balance: int = 0) -> int:
    from domain.purse import CardKind

    card_id = make_card(engine, settings, number, kind=CardKind.BEARER, balance=balance)
    with transaction(engine) as session:
        session.get(PurseCardRow, card_id).account_id = user_id
    return card_id


def _card(engine, number: str) -> PurseCardRow:
    with transaction(engine) as session:
        row = session.scalars(select(PurseCardRow).where(PurseCardRow.number == number)).one()
        assert row.balance == purse_service.ledger_sum(session, row.id)
        session.expunge(row)
        return row


def test_r_kkm_2_giving_up_a_collected_card_online_refunds_the_deposit_and_moves_the_balance(
        logged_in, engine, settings, mails):
    browser, user = logged_in
    first = _collected_card(browser, engine, settings, number="70070001")
    with transaction(engine) as session:
        purse_service.top_up_at_service_point(session, "70070001", 750, tariff=purse_tariff())
    give_up = f"/card-applications/{first.id}/give-up"
    assert "Rezygnacja z karty 70070001" in page_text(browser.get(f"/card-applications/{first.id}").text)
    nowhere = browser.submit(f"/card-applications/{first.id}", {"confirm": "on"}, action=give_up)
    assert nowhere.status_code == 422
    assert field_errors(nowhere.text, "move_to")[0].startswith("Na karcie zostały pieniądze")
    other = _bearer_card_of(engine, settings, user.id, "70070002", balance=500)
    with transaction(engine) as session:
        stranger = purse_service.issue_card(session, number="70070003", kind=purse_service.rules.CardKind.BEARER,
                                            issued_on=web_clock.today())
        stranger_id = stranger.id
    not_mine = browser.submit(f"/card-applications/{first.id}", {"confirm": "on", "move_to": str(stranger_id)},
                              action=give_up)
    assert not_mine.status_code == 422 and field_errors(not_mine.text, "move_to")[0].startswith("Saldo można przenieść")
    bad = browser.submit(f"/card-applications/{first.id}", {"confirm": "on", "move_to": "1e9"}, action=give_up)
    assert bad.status_code == 422
    assert _card(engine, "70070001").account_id == user.id and applications(engine)[0].status == service.COLLECTED

    done = browser.submit(f"/card-applications/{first.id}", {"confirm": "on", "move_to": str(other)}, action=give_up)
    assert done.status_code == 303
    old, new = _card(engine, "70070001"), _card(engine, "70070002")
    assert (old.balance, old.account_id, old.blocked_from is not None) == (0, None, True)
    assert new.balance == 500 + 750
    [row] = applications(engine)
    assert row.status == service.GIVEN_BACK
    with transaction(engine) as session:
        assert session.get(Payment, row.deposit_payment_id).status in ("refund_due", "refunded")
    assert mails.last(user.email).subject == "Rezygnacja z karty KKM"
    assert "Kaucję 12,00\xa0zł zwracamy" in mails.last(user.email).text
    again = browser.submit(f"/card-applications/{first.id}", {"confirm": "on", "move_to": str(other)}, action=give_up)
    assert again.status_code == 409  # once only: nothing moves twice
    assert _card(engine, "70070002").balance == 1250


def test_r_kkm_2_desk_gives_up_a_card_damaged_by_its_holder_keeps_the_deposit_and_pays_out_the_balance(
        logged_in, new_browser, users, engine, settings):
    browser, _user = logged_in
    first = _collected_card(browser, engine, settings, number="70070011")
    with transaction(engine) as session:
        purse_service.top_up_at_service_point(session, "70070011", 600, tariff=purse_tariff())
    desk = staff_browser(new_browser, users)
    page = f"/desk/card-applications/{first.id}"
    action = f"{page}/give-up"
    nowhere = desk.submit(page, {"damaged_by_holder": "on"}, action=action)
    assert nowhere.status_code == 422 and field_errors(nowhere.text, "move_to")
    done = desk.submit(page, {"damaged_by_holder": "on", "pay_out": "on"}, action=action)
    assert done.status_code == 303
    card = _card(engine, "70070011")
    assert (card.balance, card.account_id, card.blocked_from is not None) == (0, None, True)
    with transaction(engine) as session:
        [payout] = session.scalars(select(purse_service.PurseLedgerEntry).where(
            purse_service.PurseLedgerEntry.card_id == card.id, purse_service.PurseLedgerEntry.kind == "payout")).all()
        assert (payout.amount, payout.staff_id is not None) == (-600, True)
        row = session.get(CardApplicationRow, first.id)
        assert row.status == service.GIVEN_BACK
        assert session.get(Payment, row.deposit_payment_id).status == "paid"  # damaged: the deposit is kept
    assert desk.submit(page, {"pay_out": "on"}, action=action).status_code in (409, 422)


def test_r_kkm_2_a_card_reported_lost_keeps_its_deposit_when_given_up(logged_in, engine, settings):
    browser, user = logged_in
    first = _collected_card(browser, engine, settings, number="70070021")
    with transaction(engine) as session:
        assert purse_service.report_card_loss(session, user.id, first.card_id, None)[0] == "purse.loss_reported"
    shown = page_text(browser.get(f"/card-applications/{first.id}").text)
    assert "Kaucja nie podlega zwrotowi" in shown
    done = browser.submit(f"/card-applications/{first.id}", {"confirm": "on"},
                          action=f"/card-applications/{first.id}/give-up")
    assert done.status_code == 303
    [row] = applications(engine)
    assert row.status == service.GIVEN_BACK
    with transaction(engine) as session:
        assert session.get(Payment, row.deposit_payment_id).status == "paid"


def test_r_kkm_2_a_free_ride_card_given_up_has_no_deposit_to_refund_and_frees_the_one_personal_card(
        logged_in, engine, settings):
    browser, _user = logged_in
    first = _collected_card(browser, engine, settings, fare="free", number="70070031", entitlement_document="at_desk")
    done = browser.submit(f"/card-applications/{first.id}", {"confirm": "on"},
                          action=f"/card-applications/{first.id}/give-up")
    assert done.status_code == 303
    with transaction(engine) as session:
        assert session.scalars(select(Payment)).first() is None
    assert _card(engine, "70070031").blocked_from is not None
    assert apply(browser, photo=jpeg()).status_code == 303  # R-KKM-1: a new personal card may be applied for


# --------------------------------------------------------------------------- returned applications (R-KKM-3)


def test_r_kkm_3_a_returned_application_is_completed_and_resubmitted_without_a_second_deposit(
        logged_in, new_browser, users, engine, settings, purposes):
    browser, _user = logged_in
    apply(browser, fare="off_50", photo=jpeg(), entitlement_document="scan", scan=jpeg(1000, 700))
    [row] = applications(engine)
    payment = pay_deposit(engine, purposes, row.id)
    desk = staff_browser(new_browser, users)
    desk.submit(f"/desk/card-applications/{row.id}", {"reason": "Zdjęcie nieostre, skan nieczytelny"},
                action=f"/desk/card-applications/{row.id}/return")
    assert "Jan Kowalski" not in page_text(desk.get("/desk/card-applications?filter=new").text)
    old_photo = applications(engine)[0].photo
    complete = f"/card-applications/{row.id}/complete"

    shown = page_text(browser.get(f"/card-applications/{row.id}").text)
    assert "Uzupełnij wniosek" in shown
    browser.get(f"/card-applications/{row.id}")
    nothing = browser.post(complete, {}, files=None)
    assert nothing.status_code == 422 and field_errors(nothing.text, "photo")
    browser.get(f"/card-applications/{row.id}")
    bad = browser.post(complete, {}, files={"photo": ("p.png", png(), "image/jpeg")})
    assert bad.status_code == 422 and field_errors(bad.text, "photo")[0].startswith("To nie jest zdjęcie JPEG")
    assert applications(engine)[0].status == service.RETURNED and applications(engine)[0].photo == old_photo

    browser.get(f"/card-applications/{row.id}")
    done = browser.post(complete, {}, files={"photo": ("p.jpg", jpeg(900, 700), "image/jpeg"),
                                             "scan": ("s.jpg", jpeg(1100, 800), "image/jpeg")})
    assert done.status_code == 303 and done.headers["location"] == f"/card-applications/{row.id}"
    [row] = applications(engine)
    assert (row.status, row.return_reason, row.deposit_payment_id) == (service.SUBMITTED, "", payment.id)
    assert row.photo != old_photo
    with transaction(engine) as session:
        assert len(session.scalars(select(Payment)).all()) == 1  # no second deposit
    assert "Jan Kowalski" in page_text(desk.get("/desk/card-applications?filter=new").text)
    assert "uzupełniony" in page_text(desk.get(f"/desk/card-applications/{row.id}").text)
    browser.get(f"/card-applications/{row.id}")
    assert browser.post(complete, {}, files={"photo": ("p.jpg", jpeg(), "image/jpeg")}).status_code == 409


# --------------------------------------------------------------------------- R-KKM-8 in the desk's queue


def test_r_kkm_8_the_desk_queue_marks_data_change_requests(logged_in, new_browser, users, engine, settings):
    browser, _user = logged_in
    first = _collected_card(browser, engine, settings, fare="off_30", number="70080001", entitlement_document="at_desk")
    until = web_clock.today() + timedelta(days=400)
    browser.submit(f"/card-applications/{first.id}/change", {"fare": "off_50", "entitlement_until": until.isoformat()})
    free = applications(engine)[1]
    desk = staff_browser(new_browser, users)
    queue = page_text(desk.get("/desk/card-applications?filter=new").text)
    assert "zmiana danych karty 70080001 (bezpłatna, bez nowej karty)" in queue
    assert "zmiana danych karty 70080001" in page_text(desk.get(f"/desk/card-applications/{free.id}").text)
    with transaction(engine) as session:
        service.accept(session, 1, free.id, None, operator=OPERATOR)
    browser.submit(f"/card-applications/{first.id}/change", {"fare": "free"})  # printed: a new card, no deposit
    queue = page_text(desk.get("/desk/card-applications?filter=new").text)
    assert "zmiana danych karty 70080001 (nowa karta)" in queue and "bez nowej karty" not in queue
