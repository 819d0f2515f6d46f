"""The back office's read-only queries: each dashboard's figures as SQL aggregates (GROUP BY in the database,
never a Python loop over the rows), on SQLite and PostgreSQL alike.

Times are stored in UTC; a dashboard speaks Warsaw time. Counts are grouped by the UTC hour in SQL (at most
24 groups a day) and those groups are folded into Warsaw days, hours and weekdays here, which is exact across
the clock changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from domain.office import FARE_CATEGORIES, CashDay, Period, cash_days
from web.platform import clock
from web.office import rollup
from web.office.sql import as_utc, hourly, utc_bounds
from web.platform.i18n import N_, _
from web.platform.models import (
    AuditEvent,
    OutboxMail,
)
from web.office.models import (
    MeterCashCollection,
    RegistryImport,
)
from web.accounts.interface import User
from web.cards.interface import Card
from web.five_plus_one.interface import (
    Subscription5p1,
    SubscriptionMonthRow,
)
from web.payment_records.interface import Payment
from web.purse.interface import (
    Device,
    DeviceEvent,
    PurseCardRow,
    PurseLedgerEntry,
)
from web.tickets.interface import Inspection

CHANNEL_NAMES = (N_("kasa"), N_("parkometr"), N_("online"))  # web.office.rollup.CHANNELS, translated when shown
WEEKDAYS = (N_("pon"), N_("wt"), N_("śr"), N_("czw"), N_("pt"), N_("sob"), N_("niedz"))



@dataclass
class Chart:
    """One chart and the table behind it: `columns` name the table's columns, `rows` hold its values; the
    first column is the x axis (labels), the others are the series. A `matrix` chart's rows are
    (weekday, hour, value)."""

    key: str
    title: str
    kind: str  # line | bar | matrix | doughnut | table (a table only, no chart)
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    money_columns: list[int] = field(default_factory=list)  # columns holding grosze (shown and exported in zł)

    def spec(self) -> dict[str, Any]:
        """What static/js/office-charts.js draws (JSON)."""
        rows = [[_zl(v) if i in self.money_columns else v for i, v in enumerate(row)] for row in self.rows]
        return {"kind": self.kind, "columns": self.columns, "rows": rows}

    def table_rows(self) -> list[list[Any]]:
        """The rows as the table and the CSV show them (money in złoty with two decimals, e.g. 80.00)."""
        return [[f"{v / 100:.2f}" if i in self.money_columns and isinstance(v, int) else v for i, v in enumerate(row)]
                for row in self.rows]


def _zl(grosze: Any) -> Any:
    return round(grosze / 100, 2) if isinstance(grosze, int) else grosze


@dataclass
class Dashboard:
    key: str
    title: str
    figures: list[tuple[str, str]]  # (label, value) shown above the charts
    charts: list[Chart]

    def chart(self, key: str) -> Chart | None:
        return next((c for c in self.charts if c.key == key), None)


# --------------------------------------------------------------------------- time helpers


def calm(session: Session) -> None:
    """PostgreSQL: a dashboard's queries run without parallel workers. On a small server, workers each rebuilding
    the same hash table tripled a query's time and took every core from taps and sign-ins."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _month_of(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def per_day(period: Period, groups: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Fold (UTC hour, v1..vn) groups into one row per Warsaw day of the period: [day, v1..vn]."""
    days: dict[date, list[int]] = {d: [0] * width for d in period.each_day()}
    for bucket, *values in groups:
        day = clock.to_local(as_utc(bucket)).date()
        if day in days:
            for i, value in enumerate(values):
                days[day][i] += int(value or 0)
    return [[d.isoformat(), *v] for d, v in days.items()]


# --------------------------------------------------------------------------- 5+1


def five_plus_one(session: Session, period: Period, today: date, *, live: bool = False) -> Dashboard:
    """New subscriptions and revenue: closed days from the daily roll-up (web.office.rollup), today live; `live`
    reads every day live. The rest is live (states that change: cancelled, charges, months due)."""

    start, end = utc_bounds(period)
    s = Subscription5p1
    m = SubscriptionMonthRow
    active = session.scalar(select(func.count()).select_from(s).where(s.status == "active")) or 0

    found = rollup.figures(session, period.first.replace(day=1), period.last, today if not live else date.min,
                           rollup.FIVE_METRICS, daily=rollup.FIVE_METRICS)
    ended = session.execute(
        select(s.ended_on, func.sum(case((s.status == "cancelled", 1), else_=0)),
               func.sum(case((s.status == "broken", 1), else_=0)))
        .where(s.ended_on >= period.first, s.ended_on <= period.last).group_by(s.ended_on)).all()
    by_day = {d.isoformat(): [found.per_day[d][("sub_new", "")][0] if ("sub_new", "") in found.per_day[d] else 0]
              for d in period.each_day()}
    cancelled = {str(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in ended}
    subs_rows = [[day, by_day[day][0], *cancelled.get(day, (0, 0))] for day in by_day]

    # The 5+1 tickets in force today by their month in the cycle (a paid month is a ticket; a month lasts at
    # most 31 days, so the starts_on index narrows the search).
    month_now = session.execute(
        select(m.month_index, func.count())
        .where(m.state == "paid", m.starts_on <= today, m.starts_on > today - timedelta(days=32), m.ends_on >= today)
        .group_by(m.month_index).order_by(m.month_index)).all()
    months = {int(i): int(n) for i, n in month_now}
    month_rows = [[f"{i}/6", months.get(i, 0)] for i in range(1, 7)]

    p = Payment
    charge_groups = hourly(
        session, p.created_at,
        [func.count(),
         func.sum(case((p.status == "paid", 1), else_=0)),
         func.sum(case((p.status == "failed", 1), else_=0)),
         func.sum(case((p.kind == "token", 1), else_=0))],
        p.purpose == "5p1_month", p.created_at >= start, p.created_at < end)
    due = dict(session.execute(
        select(m.starts_on, func.count()).where(m.starts_on >= period.first, m.starts_on <= period.last,
                                                m.state != "cancelled").group_by(m.starts_on)).all())
    charges = []
    for day, _attempts, paid, declined, automatic in per_day(period, charge_groups, 4):
        retried = max(0, automatic - int(due.get(date.fromisoformat(day), 0))) if automatic else 0
        charges.append([day, int(due.get(date.fromisoformat(day), 0)), paid, declined, retried])

    months_revenue: dict[str, list[int]] = {}
    for day in sorted(found.per_day):
        records = found.per_day[day]
        cells = [records[("revenue", k)][1] if ("revenue", k) in records else 0 for k in ("normal", "reduced", "plus1")]
        if ("revenue", "paid") in records:
            total = months_revenue.setdefault(day.strftime("%Y-%m"), [0, 0, 0])
            for i, v in enumerate(cells):
                total[i] += v
    revenue_rows = [[month, *v] for month, v in sorted(months_revenue.items())]
    broken_total = sum(row[3] for row in subs_rows)
    return Dashboard("5plus1", _("Bilet 5+1"), [
        (_("Aktywne subskrypcje"), str(active)),
        (_("Przerwane cykle w okresie"), str(broken_total)),
    ], [
        Chart("subscriptions", _("Nowe i zakończone subskrypcje dziennie"), "line",
              [_("dzień"), _("nowe"), _("anulowane"), _("przerwane cykle")], subs_rows),
        Chart("month-of-six", _("Bilety 5+1 ważne dziś: który to miesiąc z 6"), "bar", [_("miesiąc"), _("bilety")], month_rows),
        Chart("charges", _("Obciążenia dziennie"), "bar",
              [_("dzień"), _("należne"), _("opłacone"), _("odrzucone"), _("ponowione")], charges,
              note=_("należne: miesiące zaczynające się tego dnia; ponowione: obciążenia automatyczne ponad należne")),
        Chart("revenue", _("Przychód miesięcznie (zł)"), "bar", [_("miesiąc"), _("normalny"), _("ulgowy"), _("„+1”")],
              revenue_rows, money_columns=[1, 2, 3]),
    ])


# --------------------------------------------------------------------------- e-purse


def purse(session: Session, period: Period, today: date | None = None, *, live: bool = False) -> Dashboard:
    """Closed days from the daily roll-up (web.office.rollup), today live; `live` reads every day live."""

    today = today or clock.today()
    found = rollup.figures(session, period.first, period.last, today if not live else date.min, rollup.PURSE_METRICS)
    totals = found.totals
    heat: dict[tuple[int, int], int] = defaultdict(int)
    for (metric, key), (count, _amount) in totals.items():
        if metric == "heat":
            weekday, hour = key.split(":")
            heat[(int(weekday), int(hour))] += count
    heat_rows = [[_(WEEKDAYS[d]), h, heat.get((d, h), 0)] for d in range(7) for h in range(24)]
    per_hour = [[f"{h:02d}", sum(heat.get((d, h), 0) for d in range(7))] for h in range(24)]

    names = dict(session.execute(select(col(Device.id), col(Device.name))).all()) if totals else {}

    def device_name(key: str) -> str:
        return str(names.get(int(key), "—")) if key else "—"

    per_line: dict[str, int] = defaultdict(int)
    by_type: dict[str, list[int]] = {c: [0, 0] for c in FARE_CATEGORIES}
    channels = {name: [0, 0, 0] for name in rollup.CHANNELS}  # top-ups, paid in, bonus
    meters: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (metric, key), (count, amount) in totals.items():
        if metric == "line":
            per_line[device_name(key)] += count
        elif metric == "fare":
            by_type[key][0] += count
            by_type[key][1] += amount
        elif metric == "topup":
            channels[key][0] += count
            channels[key][1] += amount
        elif metric == "bonus":
            channels[key][2] += amount
        elif metric == "meter":
            meters[device_name(key)][0] += count
            meters[device_name(key)][1] += amount
    line_rows = [[name, n] for name, n in sorted(per_line.items(), key=lambda item: (-item[1], item[0]))[:30]]
    fare_names = {"normal": _("normalny"), "reduced": _("ulgowy"), "short": _("krótki"), "suburban": _("podmiejski"),
                  "companion": _("współpasażerowie, bagaż")}
    fare_rows = [[fare_names[c], v[0], v[1]] for c, v in by_type.items()]
    owed_cards, owed = session.execute(
        select(func.count(), func.coalesce(func.sum(-PurseCardRow.balance), 0)).where(col(PurseCardRow.balance) < 0)).one()
    topup_rows = [[_(name), *values] for name, values in channels.items()]  # the channel names: CHANNEL_NAMES
    parking_rows = [[name, v[0], v[1]] for name, v in sorted(meters.items(), key=lambda item: (-item[1][1], item[0]))[:50]]
    return Dashboard("purse", _("Portmonetka (karta KKM)"), [
        (_("Przejazdy w okresie"), str(sum(v[0] for v in by_type.values()))),
        (_("Przejazdy na kredyt do spłaty"), _("%(cards)s kart, %(amount)s zł", cards=owed_cards, amount=f"{owed / 100:.2f}")),
    ], [
        Chart("rides-heatmap", _("Przejazdy: godzina × dzień tygodnia"), "matrix", [_("dzień"), _("godzina"), _("przejazdy")], heat_rows),
        Chart("rides-per-hour", _("Przejazdy według godziny"), "bar", [_("godzina"), _("przejazdy")], per_hour),
        Chart("rides-per-line", _("Przejazdy według kasownika (pojazdu)"), "bar", [_("kasownik"), _("przejazdy")], line_rows),
        Chart("fares", _("Opłaty według rodzaju"), "bar", [_("rodzaj"), _("przejazdy"), _("kwota (zł)")], fare_rows,
              money_columns=[2]),
        Chart("topups", _("Doładowania według kanału i koszt premii"), "bar",
              [_("kanał"), _("doładowania"), _("wpłaty (zł)"), _("premia (zł)")], topup_rows, money_columns=[2, 3]),
        Chart("parking", _("Przychód z parkowania według parkometru"), "bar", [_("parkometr"), _("opłaty"), _("kwota (zł)")],
              parking_rows, money_columns=[2]),
    ])


# --------------------------------------------------------------------------- inspections


VERDICT_NAMES = {"valid": N_("ważny"), "stale": N_("nieaktualny kod"), "forged": N_("podrobiony"),
                 "revoked": N_("unieważniony"), "expired": N_("wygasły"), "not_yet_valid": N_("jeszcze nieważny"),
                 "malformed": N_("nieczytelny"), "unknown_key": N_("nieznany klucz"),
                 "bad_device_signature": N_("zły podpis telefonu"), "unsupported_version": N_("nieobsługiwana wersja")}


def inspections(session: Session, period: Period) -> Dashboard:
    start, end = utc_bounds(period)
    i = Inspection
    in_period = (i.at >= start, i.at < end)
    per = hourly(session, i.at, [func.count(), func.sum(case((i.verdict == "valid", 1), else_=0))], *in_period)
    day_rows = [[d, total, valid, total - valid] for d, total, valid in per_day(period, per, 2)]
    verdicts = session.execute(select(i.verdict, func.count()).where(*in_period).group_by(i.verdict)
                               .order_by(func.count().desc())).all()
    verdict_rows = [[_(VERDICT_NAMES[v]) if v in VERDICT_NAMES else v, int(n)] for v, n in verdicts]
    methods = session.execute(select(i.method, func.count()).where(*in_period).group_by(i.method)).all()
    method_names = {"scan": _("skan (zweryfikowany offline, przesłany)"), "terminal": _("terminal"), "card": _("karta")}
    method_rows = [[method_names.get(mth, mth), int(n)] for mth, n in methods]
    return Dashboard("inspections", _("Kontrole biletów"), [
        (_("Kontrole w okresie"), str(sum(r[1] for r in day_rows))),
    ], [
        Chart("checks", _("Kontrole dziennie"), "line", [_("dzień"), _("wszystkie"), _("ważne"), _("nieważne")], day_rows),
        Chart("verdicts", _("Werdykty"), "bar", [_("werdykt"), _("kontrole")], verdict_rows),
        Chart("uploads", _("Skany przesłane z aplikacji (offline) i inne sposoby"), "bar", [_("sposób"), _("kontrole")], method_rows),
    ])


# --------------------------------------------------------------------------- health


PAYMENT_STATES = {"pending": N_("w toku u operatora płatności"),
                  "held_for_review": N_("wstrzymane do sprawdzenia (R-PAY-2)"), "refund_due": N_("zwrot do wykonania")}


def health(session: Session, today: date, now: datetime) -> Dashboard:
    m = SubscriptionMonthRow
    due_now = func.coalesce(m.next_attempt_on, m.starts_on) <= today
    billing = session.execute(
        select(m.state, func.count()).where(m.state.in_(("due", "failed", "charging")), due_now)  # type: ignore[attr-defined]
        .group_by(m.state)).all()
    billing_rows = [[{"due": _("do obciążenia"), "failed": _("do ponowienia"), "charging": _("w toku")}.get(s, s), int(n)]
                    for s, n in billing]
    o = OutboxMail
    mail_waiting, mail_failed, mail_oldest = session.execute(
        select(func.sum(case((and_(o.sent_at.is_(None), o.failed_at.is_(None)), 1), else_=0)),  # type: ignore[union-attr]
               func.sum(case((o.failed_at.is_not(None), 1), else_=0)),  # type: ignore[union-attr]
               func.min(case((and_(o.sent_at.is_(None), o.failed_at.is_(None)), o.created_at), else_=None)))  # type: ignore[union-attr]
    ).one()
    p = Payment
    counted = dict(session.execute(
        select(p.status, func.count()).where(p.status.in_(tuple(PAYMENT_STATES)))  # type: ignore[attr-defined]
        .group_by(p.status)).all())
    payment_rows = [[_(name), int(counted.get(state, 0))] for state, name in PAYMENT_STATES.items()]
    ev = DeviceEvent
    day_ago = now - timedelta(days=1)
    # Per device, through the (device_id, received_at) index: its last event and those of the last 24 h;
    # never a scan of every event ever received.
    last = select(func.max(ev.received_at)).where(ev.device_id == Device.id).scalar_subquery()
    recent = (select(func.count()).select_from(ev).where(ev.device_id == Device.id, ev.received_at >= day_ago)
              .scalar_subquery())
    flagged_recent = (select(func.count()).select_from(ev)
                      .where(ev.device_id == Device.id, ev.received_at >= day_ago, ev.flag.is_not(None))  # type: ignore[union-attr]
                      .scalar_subquery())
    seen = session.execute(
        select(col(Device.id), col(Device.name), col(Device.kind), col(Device.active), last, recent, flagged_recent)
        .where(col(Device.simulator).is_(False))
        .order_by(col(Device.id)).limit(500)).all()
    offline = sum(1 for _id, _name, _kind, active, last, _events, _flagged in seen
                  if active and last and as_utc(last) < day_ago)
    device_rows = [[name, kind, _("tak") if active else _("wyłączony"),
                    clock.to_local(as_utc(last)).strftime("%Y-%m-%d %H:%M") if last else _("nigdy"),
                    int(events or 0), int(flagged or 0)]
                   for _id, name, kind, active, last, events, flagged in seen]
    held = int(counted.get("held_for_review", 0))
    failure_rows, job_rows = _jobs(session, now)
    return Dashboard("health", _("Stan systemu"), [
        (_("Miesiące 5+1 czekające na obciążenie"), str(sum(r[1] for r in billing_rows))),
        (_("Poczta w kolejce"), f"{int(mail_waiting or 0)}"
         + (" " + _("(najstarsza z %(when)s)", when=clock.to_local(as_utc(mail_oldest)).strftime("%Y-%m-%d %H:%M"))
            if mail_oldest else "")),
        (_("Poczta nieodebrana (zaniechana)"), str(int(mail_failed or 0))),
        (_("Płatności wstrzymane do sprawdzenia (R-PAY-2)"), str(held)),
        (_("Urządzenia bez kontaktu od doby"), str(offline)),
        (_("Nieudane zadania (7 dni)"), str(len(failure_rows))),
    ], [
        Chart("billing-backlog", _("Zaległości rozliczeń 5+1"), "bar", [_("stan"), _("miesiące")], billing_rows),
        Chart("payments", _("Płatności oczekujące i do sprawdzenia"), "bar", [_("stan"), _("płatności")], payment_rows),
        Chart("mail", _("Kolejka poczty"), "bar", [_("stan"), _("wiadomości")],
              [[_("w kolejce"), int(mail_waiting or 0)], [_("zaniechane"), int(mail_failed or 0)]]),
        Chart("devices", _("Urządzenia: ostatni kontakt, zdarzenia i oflagowane partie z ostatniej doby"), "bar",
              [_("urządzenie"), _("rodzaj"), _("aktywne"), _("ostatni kontakt"), _("zdarzenia (24 h)"), _("oflagowane (24 h)")],
              device_rows),
        Chart("failed-jobs", _("Nieudane uruchomienia zadań (ostatnie 7 dni, najnowsze najpierw)"), "table",
              [_("zadanie"), _("kiedy"), _("błąd")], failure_rows),
        Chart("jobs", _("Zadania: uruchomienia i ostatnie powodzenie"), "table",
              [_("zadanie"), _("uruchomienia"), _("nieudane"), _("ostatnie uruchomienie"), _("ostatnie powodzenie"), _("ostatni błąd")],
              job_rows),
    ])


FAILURES_SHOWN = 100


def _jobs(session: Session, now: datetime) -> tuple[list[list[Any]], list[list[Any]]]:
    """Recent failed runs of the scheduled jobs (job, when, error summary) and each job's runs and last success."""
    from web.platform.models import JobRun
    from web.platform.observe import JOB_FAILURES as f

    def when(moment: datetime | None) -> str:
        return clock.to_local(as_utc(moment)).strftime("%Y-%m-%d %H:%M") if moment else _("nigdy")

    failures = session.execute(select(f.c.job, f.c.at, f.c.error).where(f.c.at >= now - timedelta(days=7))
                               .order_by(f.c.at.desc(), f.c.id.desc()).limit(FAILURES_SHOWN)).all()
    failure_rows = [[job, when(at), error] for job, at, error in failures]
    runs = session.scalars(select(JobRun).order_by(col(JobRun.job)).limit(100)).all()
    job_rows = [[r.job, r.runs, r.failures, when(r.last_run_at), when(r.last_success_at), r.last_error or ""]
                for r in runs]
    return failure_rows, job_rows


# --------------------------------------------------------------------------- devices


def devices(session: Session) -> list[Device]:
    return list(session.scalars(select(Device).where(col(Device.simulator).is_(False)).order_by(col(Device.id)).limit(1000)))


def device(session: Session, device_id: int) -> Device | None:
    found = session.get(Device, device_id)
    return None if found is None or found.simulator else found


def recent_events(session: Session, device_id: int, limit: int = 50) -> list[DeviceEvent]:
    return list(session.scalars(select(DeviceEvent).where(col(DeviceEvent.device_id) == device_id)
                                .order_by(col(DeviceEvent.id).desc()).limit(limit)))


def meter_cash(session: Session, device_id: int, days: int, today: date) -> list[CashDay]:
    """A meter's coin top-ups booked per Warsaw day against the cash collected, last `days` days."""
    period = Period(today - timedelta(days=days - 1), today)
    start, end = utc_bounds(period)
    e = PurseLedgerEntry
    by_hour = hourly(session, e.at, [func.sum(e.amount)], e.device_id == device_id,
                     e.kind.in_(("topup", "credit_repayment")), e.at >= start, e.at < end)  # type: ignore[attr-defined]
    booked = {date.fromisoformat(d): v for d, v in per_day(period, by_hour, 1) if v}
    collected = dict(session.execute(
        select(col(MeterCashCollection.day), col(MeterCashCollection.amount))
        .where(col(MeterCashCollection.device_id) == device_id, col(MeterCashCollection.day) >= period.first)).all())
    return cash_days(booked, collected)


# --------------------------------------------------------------------------- registry, accounts, audit


def registry_imports(session: Session, limit: int = 100) -> list[RegistryImport]:
    return list(session.scalars(select(RegistryImport).order_by(col(RegistryImport.id).desc()).limit(limit)))


def staff_accounts(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(col(User.role).in_(("staff", "inspector", "admin")))
                                .order_by(col(User.role), col(User.email)).limit(1000)))


def account_overview(session: Session, user_id: int) -> dict[str, Any] | None:
    user = session.get(User, user_id)
    if user is None:
        return None
    return {
        "user": user,
        "cards": list(session.scalars(select(Card).where(col(Card.account_id) == user_id).order_by(col(Card.id)).limit(100))),
        "purse_cards": list(session.scalars(select(PurseCardRow).where(col(PurseCardRow.account_id) == user_id).limit(100))),
        "subscriptions": list(session.scalars(select(Subscription5p1).where(col(Subscription5p1.user_id) == user_id)
                                              .order_by(col(Subscription5p1.id).desc()).limit(50))),
        "payments": list(session.scalars(select(Payment).where(col(Payment.user_id) == user_id)
                                         .order_by(col(Payment.id).desc()).limit(50))),
    }


AUDIT_PAGE = 100


def audit_log(session: Session, *, action: str = "", user_id: int | None = None, text: str = "",
              before_id: int | None = None) -> list[AuditEvent]:
    """The audit log, newest first, filtered by action prefix, user id and text in the detail."""
    query = select(AuditEvent)
    if action:
        query = query.where(col(AuditEvent.action).startswith(action, autoescape=True))
    if user_id is not None:
        query = query.where(col(AuditEvent.user_id) == user_id)
    if text:
        query = query.where(col(AuditEvent.detail).contains(text, autoescape=True))
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    return list(session.scalars(query.order_by(col(AuditEvent.id).desc()).limit(AUDIT_PAGE)))
