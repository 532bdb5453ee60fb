"""The console's fast paths say what the plain definitions say, in a bounded number of
statements, and state the partial indexes' predicates word for word."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from gateway.admin import models, queries
from gateway.db import db, utcnow
from gateway.federation.platforms import add_platform
from gateway.sync.models import OutboxItem, SyncAttempt


def _item(platform_id: str, state: str, created: datetime, done: datetime | None, **kw):
    item = OutboxItem(
        platform_id=platform_id,
        kind=kw.pop("kind", "push_transfer"),
        state=state,
        attempts=kw.pop("attempts", 1),
        created_at=created,
        completed_at=done,
        **kw,
    )
    db.session.add(item)
    db.session.flush()
    return item


def _expected_hours(items, failures, now, hours=24):
    """The chart's figures computed from their definitions, one row at a time."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    result = []
    for h in range(hours):
        start = end - timedelta(hours=hours - h)
        stop = min(start + timedelta(hours=1), now)
        in_hour = [i for i in items if i[2] and start <= i[2] < start + timedelta(hours=1)]
        waited = [
            created
            for state, created, done in items
            if created < stop
            and ((done is None and state in ("pending", "running")) or (done and done > stop))
        ]
        result.append(
            {
                "delivered": sum(1 for i in in_hour if i[0] == "succeeded"),
                "dead": sum(1 for i in in_hour if i[0] == "dead"),
                "failed_attempts": sum(
                    1 for f in failures if start <= f < start + timedelta(hours=1)
                ),
                "lag_seconds": int((stop - min(waited)).total_seconds()) if waited else 0,
            }
        )
    return result


def test_the_chart_agrees_with_its_definition(app, client, admin_headers):
    with app.app_context():
        platform = add_platform("chart", "timerepublik", "https://c.test/api")
        other = add_platform("other", "timerepublik", "https://o.test/api")
        now = utcnow()
        ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
        items = [
            ("succeeded", ago(30 * 60), ago(20 * 60)),  # waited 10 hours, long ago
            ("succeeded", ago(600), ago(200)),
            ("succeeded", ago(190), ago(185)),
            ("dead", ago(400), ago(90)),
            ("skipped", ago(300), ago(61)),
            ("succeeded", ago(45), ago(44)),
            ("pending", ago(130), None),
        ]
        for state, created, done in items:
            _item(platform.id, state, created, done, attempts=0 if state == "pending" else 1)
        # Another platform's rows count in the whole chart, not in this platform's.
        _item(other.id, "pending", ago(900), None, attempts=0)
        failures = [ago(500), ago(499), ago(100), ago(5)]
        for n, started in enumerate(failures):
            row = _item(platform.id, "succeeded", ago(1000 + n), ago(999 + n))
            db.session.add(
                SyncAttempt(
                    outbox_id=row.id, platform_id=platform.id, started_at=started, outcome="retry"
                )
            )
            db.session.add(
                SyncAttempt(
                    outbox_id=row.id, platform_id=platform.id, started_at=started, outcome="ok"
                )
            )
        db.session.commit()
    hours = client.get("/admin/api/activity?platform=chart", headers=admin_headers).json["items"]
    expected = _expected_hours(
        [*items, *((("succeeded", ago(1000 + n), ago(999 + n))) for n in range(4))], failures, now
    )
    got = [{k: h[k] for k in expected[0]} for h in hours]
    for hour, want in zip(got, expected, strict=True):
        assert hour["delivered"] == want["delivered"]
        assert hour["dead"] == want["dead"]
        assert hour["failed_attempts"] == want["failed_attempts"]
        assert hour["lag_seconds"] == pytest.approx(want["lag_seconds"], abs=5)
    assert sum(h["lag_seconds"] > 0 for h in got) > 5
    everyone = client.get("/admin/api/activity", headers=admin_headers).json["items"]
    assert everyone[-1]["lag_seconds"] >= 900 * 60 - 5  # the other platform's oldest item


def _statements(app, call):
    seen = []
    engine = app.extensions["db"].engine

    def count(*_):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_the_platforms_overview_takes_two_statements_however_many_platforms(app):
    with app.app_context():
        add_platform("one", "timerepublik", "https://1.test/api")
        with_one = _statements(app, queries.platforms_overview)
        for n in range(2, 6):
            add_platform(f"p{n}", "timerepublik", f"https://{n}.test/api")
        db.session.commit()
        assert _statements(app, queries.platforms_overview) == with_one == 2


def test_the_overview_page_runs_as_many_statements_for_five_platforms_as_for_one(
    app, operator_client
):
    with app.app_context():
        add_platform("one", "timerepublik", "https://1.test/api")
        db.session.commit()
    operator_client.get("/admin")  # the session's first sight: its own statements
    with_one = _statements(app, lambda: operator_client.get("/admin"))
    with app.app_context():
        for n in range(2, 6):
            add_platform(f"p{n}", "timerepublik", f"https://{n}.test/api")
        db.session.commit()
    assert _statements(app, lambda: operator_client.get("/admin")) == with_one


def test_history_is_counted_up_to_the_cap(app, operator_client, monkeypatch):
    monkeypatch.setattr(queries, "TAB_COUNT_CAP", 2)
    with app.app_context():
        platform = add_platform("hist", "timerepublik", "https://h.test/api")
        now = utcnow()
        for n in range(3):
            _item(platform.id, "dead", now - timedelta(minutes=n + 1), now, attempts=8)
        _item(platform.id, "skipped", now - timedelta(minutes=9), now)
        for n in range(3):
            _item(platform.id, "pending", now - timedelta(minutes=n + 1), None, attempts=n)
        db.session.commit()
        (summary,) = queries.platforms_overview()
    assert summary["outbox"] == {
        "pending": 3,
        "running": 0,
        "succeeded": 0,
        "dead": 2,
        "skipped": 1,
    }
    assert summary["retrying"] == 2
    assert summary["outbox_capped_at"] == 2
    page = operator_client.get("/admin").get_data(as_text=True)
    assert ">2+</a>" in page


def test_queries_state_the_partial_indexes_predicates():
    """A partial index serves a query only if the query's condition says the same."""
    rendered = {
        models.WAITING_ROWS: queries.WAITING,
        models.FAILED_ATTEMPTS: queries.FAILED_ATTEMPT,
    }
    for predicate, condition in rendered.items():
        sql = str(condition.compile(compile_kwargs={"literal_binds": True}))
        assert sql.split(".", 1)[1].replace("(", "").replace(")", "") == predicate.replace(
            "(", ""
        ).replace(")", "")
    ended = [i for i in models.ADMIN_INDEXES if i.name == "ix_outbox_ended_platform_id_kind_state"]
    assert str(ended[0].dialect_options["postgresql"]["where"]) == models.ENDED_ROWS
