"""The back office's daily roll-up (issue 17), on SQLite and PostgreSQL: the 5+1 and e-purse dashboards read
closed days from `dashboard_rollups` and today live, with the same numbers as a whole-period live computation
over data spanning a month end, a year end and both Warsaw clock changes; late data (an offline validator's
batch for a past day) marks its day stale and is read live until the job recomputes it; the job is idempotent
and runs as `ekp office rollup`."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.office import Period
from domain.purse import CardKind
from tests.conftest import VALID_PESEL
from tests.support.purse import make_card, tap
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.cards.models import Card
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.purse.models import PurseLedgerEntry
from web.office import queries, rollup

NOW = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)  # 10:30 in Warsaw
# UTC instants around the Warsaw day boundaries that are easy to get wrong
EDGES = [
    "2025-12-31T22:30", "2025-12-31T23:00", "2025-12-31T23:30", "2026-01-01T00:30",  # year end (UTC+1)
    "2026-01-31T22:59", "2026-01-31T23:00", "2026-02-28T23:30",  # month ends
    "2026-03-28T22:30", "2026-03-28T23:30", "2026-03-29T00:30", "2026-03-29T01:30", "2026-03-29T02:30",  # spring
    "2026-03-29T21:59", "2026-03-29T22:00", "2026-03-29T22:30", "2026-04-30T21:30", "2026-04-30T22:30",
    "2026-10-24T21:30", "2026-10-24T22:30", "2026-10-25T00:30", "2026-10-25T01:00", "2026-10-25T01:30",  # autumn
    "2026-10-25T22:30", "2026-10-25T23:30", "2026-10-31T22:59", "2026-10-31T23:00",
]
KINDS = [("fare", "city:normal", ""), ("fare", "city:off_50", ""), ("fare", "short:normal", ""),
         ("fare", "suburban:normal", ""), ("companion", "city:normal", ""), ("credit_ride", "city:normal", ""),
         ("topup", "", ""), ("topup", "", "online"), ("topup", "parking_meter", "Rynek"), ("bonus", "", ""),
         ("bonus", "parking_meter", "Rynek"), ("credit_repayment", "", ""), ("parking", "zone-A", "Rynek")]


@pytest.fixture
def at_now(clock):  # type: ignore[no-untyped-def]
    clock.travel(NOW - clock.now())
    return clock


def _instants(rng: random.Random) -> list[datetime]:
    edges = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in EDGES]
    start = datetime(2025, 12, 1, tzinfo=UTC)
    span = int((NOW - start).total_seconds())
    spread = [start + timedelta(seconds=rng.randrange(span)) for _ in range(250)]
    today = [NOW - timedelta(minutes=rng.randrange(5, 500)) for _ in range(10)]
    return edges * 2 + spread + today


def seed(engine, settings, users) -> None:  # type: ignore[no-untyped-def]
    """A year of e-purse entries and 5+1 subscriptions and paid months by direct inserts."""
    rng = random.Random(17)
    from web.purse import service as purse_service

    with transaction(engine) as session:
        devices = [purse_service.add_device(session, kind, name)[0].id for kind, name in
                   (("validator", "BUS 1"), ("validator", "BUS 2"), ("validator", "TRAM 3"),
                    ("parking-meter", "Rynek"), ("parking-meter", "Dworzec"))]
    card_id = make_card(engine, settings, "7001", kind=CardKind.BEARER)
    anna = users.create("anna@example.pl", pesel=VALID_PESEL)
    with transaction(engine) as session:
        card = Card(carrier_type="KKM", client_code="100200300", holder_name="Anna Nowak", pesel_hash="x" * 64)
        session.add(card)
        session.flush()
        for at in _instants(rng):
            kind, detail, place = rng.choice(KINDS)
            device = rng.choice(devices[3:]) if kind == "parking" or "parking_meter" in detail else (
                rng.choice(devices[:3] + [None]))  # type: ignore[list-item]
            amount = rng.choice([280, 340, 140, 0]) * (-1 if kind in ("fare", "companion", "credit_ride", "parking")
                                                       else 1)
            session.add(PurseLedgerEntry(card_id=card_id, at=at, kind=kind, amount=amount or 500, detail=detail,
                                         place=place, device_id=device, recorded_at=at))
            variant = rng.choice(["normal", "reduced"])
            sub = Subscription5p1(user_id=anna.id, card_id=card.id, variant=variant, first_day=at.date(),
                                  status="active", created_at=at)
            session.add(sub)
            session.flush()
            index = rng.choice([1, 2, 6])
            paid_on = web_clock.to_local(at).date()
            session.add(SubscriptionMonthRow(subscription_id=sub.id, cycle=1, month_index=index, state="paid",
                                             starts_on=paid_on, ends_on=paid_on + timedelta(days=30),
                                             price=0 if index == 6 and rng.random() < 0.5 else 8000,
                                             paid_on=paid_on))


def both_ways(engine, period: Period) -> None:  # type: ignore[no-untyped-def]
    """Each chart and figure of the two rolled-up dashboards, from the roll-up and all live, are the same."""
    today = web_clock.today()
    with transaction(engine) as session:
        pairs = [(queries.five_plus_one(session, period, today), queries.five_plus_one(session, period, today, live=True)),
                 (queries.purse(session, period, today), queries.purse(session, period, today, live=True))]
    for rolled, live in pairs:
        assert rolled.figures == live.figures
        for chart in live.charts:
            assert rolled.chart(chart.key).rows == chart.rows, (live.key, chart.key)  # type: ignore[union-attr]


PERIODS = [Period(date(2025, 12, 1), date(2026, 11, 5)), Period(date(2026, 10, 7), date(2026, 11, 5)),
           Period(date(2026, 3, 20), date(2026, 4, 2)), Period(date(2025, 12, 31), date(2026, 1, 1))]


def test_rolled_up_dashboards_equal_the_live_queries_across_month_year_ends_and_clock_changes(
        at_now, engine, settings, users):  # type: ignore[no-untyped-def]
    seed(engine, settings, users)
    report = rollup.refresh(engine)
    assert report.computed == rollup.ROLLUP_DAYS  # every closed day, also those without data
    with transaction(engine) as session:
        found = rollup.figures(session, date(2025, 12, 1), date(2026, 11, 5), web_clock.today(), rollup.PURSE_METRICS)
    assert found.live_days == 1  # only today is read live
    assert sum(v[0] for (m, _k), v in found.totals.items() if m == "heat") > 100
    for period in PERIODS:
        both_ways(engine, period)
    assert rollup.refresh(engine).computed == 0  # idempotent: nothing left to do


def test_a_late_offline_batch_marks_its_day_stale_and_is_counted_before_and_after_the_job(
        at_now, engine, settings, users, office, client):  # type: ignore[no-untyped-def]
    seed(engine, settings, users)
    rollup.refresh(engine)
    with transaction(engine) as session:
        from web.purse import service as purse_service

        _v, validator = purse_service.add_device(session, "validator", "BUS OFFLINE")
    at_now.travel(timedelta(days=-3))
    make_card(engine, settings, "7002", kind=CardKind.BEARER, balance=5000)  # issued before the rides
    at_now.travel(timedelta(days=3))
    two_days_ago = web_clock.now() - timedelta(days=2)
    for n in range(3):
        answer = tap(client, validator, "7002", at=two_days_ago + timedelta(minutes=n * 40), vehicle=f"BUS-{n}",
                     stop=f"P{n}")
        assert answer.json()["accepted"], answer.text
    lines = office.get("/office/dashboards/purse/rides-per-line.csv")
    assert lines.status_code == 200 and "BUS OFFLINE,3" in lines.content.decode("utf-8-sig")
    both_ways(engine, PERIODS[1])
    at_now.travel(rollup.MARK_LAG + timedelta(minutes=1))  # the job's mark passes rows recorded MARK_LAG ago
    report = rollup.refresh(engine)
    assert report.stale_marked == 2 and report.computed == 2  # the rides' day and the card's top-up 3 days ago
    with transaction(engine) as session:
        stale = session.execute(select(rollup.DAYS.c.stale).where(
            rollup.DAYS.c.day == web_clock.to_local(two_days_ago).date())).scalar_one()
        assert stale is False
        found = rollup.figures(session, PERIODS[1].first, PERIODS[1].last, web_clock.today(), rollup.PURSE_METRICS)
    assert found.live_days == 1
    both_ways(engine, PERIODS[1])
    assert "BUS OFFLINE,3" in office.get("/office/dashboards/purse/rides-per-line.csv").content.decode("utf-8-sig")


@pytest.fixture
def office(browser, users):  # type: ignore[no-untyped-def]
    users.create("admin@example.pl", role="admin", pesel=None)
    browser.login("admin@example.pl")
    return browser


def test_ekp_office_rollup_runs_from_cron_and_is_recorded_as_a_job(at_now, engine, settings_env, monkeypatch):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from web.cli import main
    from web.platform.models import JobRun

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["office", "rollup"])
    assert result.exit_code == 0, result.output
    assert f"{rollup.ROLLUP_DAYS} day(s) computed" in result.output
    again = CliRunner().invoke(main, ["office", "rollup"])
    assert "0 day(s) computed" in again.output
    with transaction(engine) as session:
        run = session.get(JobRun, "rollup")
        assert run is not None and run.runs == 2 and run.failures == 0
