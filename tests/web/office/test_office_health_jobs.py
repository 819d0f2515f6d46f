"""The back office's health dashboard shows the scheduled jobs (issue 17), on SQLite and PostgreSQL: recent failed
runs (job, when, an error summary that never carries the exception's message) and each job's last success, as
tables with a CSV like the other tiles."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.conftest import page_text
from web.platform.observe import job_run


@pytest.fixture
def office(browser, users):  # type: ignore[no-untyped-def]
    users.create("admin@example.pl", role="admin", pesel=None)
    browser.login("admin@example.pl")
    return browser


def _csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_health_dashboard_lists_recent_job_failures_without_secrets_and_each_jobs_last_success(
        office, engine, clock):  # type: ignore[no-untyped-def]
    with job_run(engine, "mail"):
        pass
    clock.travel(timedelta(days=-9))
    with pytest.raises(RuntimeError), job_run(engine, "billing"):  # too old to be listed
        raise RuntimeError("old")
    clock.travel(timedelta(days=9))
    with pytest.raises(ConnectionError), job_run(engine, "billing"):
        raise ConnectionError("smtp://user:s3cret@mail.example.pl refused")
    with job_run(engine, "reconcile"):
        pass

    page = office.get("/office/dashboards/health")
    assert page.status_code == 200
    text = page_text(page.text)
    assert "Nieudane uruchomienia zadań" in text and "ConnectionError" in text and "s3cret" not in page.text
    failures = _csv(office.get("/office/dashboards/health/failed-jobs.csv"))
    assert failures[0] == ["zadanie", "kiedy", "błąd"]
    assert [row[0] for row in failures[1:]] == ["billing"]
    assert failures[1][2].startswith("ConnectionError after") and "s3cret" not in failures[1][2]
    jobs = {row[0]: row for row in _csv(office.get("/office/dashboards/health/jobs.csv"))[1:]}
    assert jobs["billing"][1:3] == ["2", "2"] and jobs["billing"][4] == "nigdy"
    assert jobs["mail"][2] == "0" and jobs["mail"][4] != "nigdy" and jobs["reconcile"][1] == "1"


def test_the_card_jobs_are_recorded_like_the_other_jobs_from_cron_and_in_process(
        engine, settings_env, monkeypatch):  # type: ignore[no-untyped-def]
    """`ekp cards expire` (cron) and its in-process loop count their runs in `job_runs`, so a failing card job
    shows on the health dashboard like billing or the roll-up."""
    import anyio
    from click.testing import CliRunner

    from web import jobs
    from web.cli import main
    from web.platform.db import transaction
    from web.platform.models import JobRun

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["cards", "expire"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as session:
        run = session.get(JobRun, "cards")
        assert run is not None and (run.runs, run.failures) == (1, 0)

    def broken(_engine, _settings):  # type: ignore[no-untyped-def]
        raise RuntimeError("database gone")

    class App:
        class state:  # noqa: N801 - the shape of Litestar's app.state
            pass

    App.state.engine = engine
    App.state.settings = None
    monkeypatch.setattr("web.card_applications.service.run_card_jobs", broken)
    anyio.run(jobs.card_jobs_round, App)  # one round of the in-process loop: the failure is logged, not raised
    with transaction(engine) as session:
        run = session.get(JobRun, "cards")
        assert run is not None and (run.runs, run.failures) == (2, 1)
