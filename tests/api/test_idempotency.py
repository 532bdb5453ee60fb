"""Idempotency-Key: one key, one effect; replay, mismatch, in progress, release, expiry."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from gateway.api.idempotency import fingerprint, purge_expired_keys
from gateway.api.models import IdempotencyKey
from gateway.db import db, utcnow
from gateway.ledger import services as ledger
from gateway.ledger.events import transaction_posted
from gateway.ledger.models import Transaction
from tests.api.conftest import with_key


def _desk(world, minutes=60) -> dict:
    return {
        "payer": {"member_id": world.anna},
        "payee": {"organization_id": world.coop},
        "minutes": minutes,
        "kind": "desk",
    }


def _transactions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Transaction))


def _key_rows(app) -> list[IdempotencyKey]:
    with app.app_context():
        return list(db.session.scalars(select(IdempotencyKey)))


def test_post_without_key_is_refused_and_changes_nothing(app, client, world):
    response = client.post("/api/v1/transactions", json=_desk(world), headers=world.anna_headers)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "idempotency_key_missing"
    assert _transactions(app) == 0


@pytest.mark.parametrize("key", ["x" * 256, "tab\there"])
def test_malformed_key_is_refused(client, world, key):
    response = client.post(
        "/api/v1/transactions",
        json=_desk(world),
        headers={**world.anna_headers, "Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "idempotency_key_invalid"


def test_same_key_and_body_replays_the_first_response(app, client, world):
    headers = with_key(world.anna_headers, "k-replay")
    first = client.post("/api/v1/transactions", json=_desk(world), headers=headers)
    # The same JSON, written differently, is the same request.
    same = json.dumps(_desk(world), indent=2, sort_keys=True)
    second = client.post(
        "/api/v1/transactions", data=same, content_type="application/json", headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert second.data == first.data
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _transactions(app) == 1
    with app.app_context():
        assert ledger.get_balance(world.anna_account) == -60


def test_same_key_with_another_body_is_refused(app, client, world):
    headers = with_key(world.anna_headers, "k-mismatch")
    client.post("/api/v1/transactions", json=_desk(world, 60), headers=headers)
    response = client.post("/api/v1/transactions", json=_desk(world, 61), headers=headers)
    assert response.status_code == 422
    assert response.get_json()["code"] == "idempotency_mismatch"
    assert _transactions(app) == 1


def test_same_key_on_another_path_or_for_another_member_is_refused(client, world):
    headers = with_key(world.anna_headers, "k-elsewhere")
    first = client.post("/api/v1/transactions", json=_desk(world), headers=headers)
    url = f"{first.headers['Location']}/reversal"
    assert client.post(url, json={"reason": "x"}, headers=headers).status_code == 422
    # bruno's token comes from the same client: the key is the client's, the request is not.
    bruno = with_key(world.bruno_headers, "k-elsewhere")
    assert client.post("/api/v1/transactions", json=_desk(world), headers=bruno).status_code == 422


def test_keys_belong_to_their_client(app, client, world):
    key = "k-shared-name"
    first = client.post(
        "/api/v1/transactions", json=_desk(world), headers=with_key(world.anna_headers, key)
    )
    other = client.post(
        "/api/v1/transactions", json=_desk(world), headers=with_key(world.admin_headers, key)
    )
    assert first.status_code == other.status_code == 201
    assert first.get_json()["id"] != other.get_json()["id"]


def test_client_errors_are_stored_and_replayed(app, client, world):
    headers = with_key(world.anna_headers, "k-422")
    first = client.post("/api/v1/transactions", json=_desk(world, 601), headers=headers)
    assert first.status_code == 422
    second = client.post("/api/v1/transactions", json=_desk(world, 601), headers=headers)
    assert second.status_code == 422
    assert second.data == first.data
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.mimetype == "application/problem+json"


def test_server_error_releases_the_key(app, client, world, monkeypatch):
    headers = with_key(world.anna_headers, "k-500")

    def broken(**_kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(ledger, "post_transfer", broken)
    failed = client.post("/api/v1/transactions", json=_desk(world), headers=headers)
    assert failed.status_code == 500
    assert failed.mimetype == "application/problem+json"
    assert _key_rows(app) == []
    monkeypatch.undo()
    retried = client.post("/api/v1/transactions", json=_desk(world), headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert _transactions(app) == 1


def test_a_replay_gets_its_answer_even_when_running_it_again_fails(app, client, world, monkeypatch):
    headers = with_key(world.anna_headers, "k-replay-500")
    first = client.post("/api/v1/transactions", json=_desk(world), headers=headers)

    def broken(**_kwargs):
        raise RuntimeError("the disk is on fire")

    # A known key's request runs before its key decides: a failure now must not hide the answer.
    monkeypatch.setattr(ledger, "post_transfer", broken)
    replay = client.post("/api/v1/transactions", json=_desk(world), headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.data == first.data
    other = client.post(
        "/api/v1/transactions", json=_desk(world, 5), headers=with_key(headers, "k-new-500")
    )
    assert other.status_code == 500  # a new key has no answer to fall back on
    assert _transactions(app) == 1


def test_expired_keys_name_nothing_and_are_purged(app, client, world):
    headers = with_key(world.anna_headers, "k-old")
    client.post("/api/v1/transactions", json=_desk(world, 10), headers=headers)
    with app.app_context():
        row = db.session.scalar(select(IdempotencyKey))
        row.created_at = utcnow() - timedelta(hours=25)
        db.session.commit()
    again = client.post("/api/v1/transactions", json=_desk(world, 20), headers=headers)
    assert again.status_code == 201  # a new request, not a mismatch
    assert _transactions(app) == 2
    with app.app_context():
        db.session.add(
            IdempotencyKey(
                client_id="c", key="k-stale", fingerprint="0" * 64, method="POST", path="/"
            )
        )
        db.session.flush()
        stale = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "k-stale"))
        stale.created_at = utcnow() - timedelta(hours=30)
        db.session.commit()
        assert purge_expired_keys() == 1
        assert [row.key for row in db.session.scalars(select(IdempotencyKey))] == ["k-old"]


def test_parallel_requests_with_one_key_post_once(app, world):
    parties = 4
    barrier = threading.Barrier(parties)
    headers = with_key(world.anna_headers, "k-parallel")

    def slow_subscriber(sender, transaction):
        time.sleep(0.3)  # keep the first request in progress while the others arrive

    def send(_index: int):
        barrier.wait()
        response = app.test_client().post(
            "/api/v1/transactions", json=_desk(world), headers=headers
        )
        return response.status_code, response.headers.get("Idempotent-Replayed"), response.data

    with (
        transaction_posted.connected_to(slow_subscriber),
        ThreadPoolExecutor(max_workers=parties) as pool,
    ):
        results = list(pool.map(send, range(parties)))
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}
    originals = [r for r in results if r[0] == 201 and r[1] is None]
    assert len(originals) == 1
    assert all(r[2] == originals[0][2] for r in results if r[0] == 201)
    assert _transactions(app) == 1
    with app.app_context():
        assert ledger.get_balance(world.anna_account) == -60


def test_fingerprint_is_canonical_for_json_only():
    a = fingerprint("POST", "/p", "c/m", b'{"a": 1, "b": [1, 2]}')
    b = fingerprint("POST", "/p", "c/m", b'{"b":[1,2],"a":1}')
    assert a == b
    assert fingerprint("POST", "/p", "c/m", b"not json") != fingerprint(
        "POST", "/p", "c/", b"not json"
    )
    assert fingerprint("POST", "/p", "c/m", b"{}") != fingerprint("POST", "/q", "c/m", b"{}")


def _commit_key_elsewhere(app, world, key: str, body: dict, response_body: str) -> None:
    """Another request's row for ``key``, committed on a connection of its own."""
    now = utcnow()
    principal = f"website-{world.anna}/{world.anna}"
    print_ = fingerprint("POST", "/api/v1/transactions", principal, json.dumps(body).encode())
    with app.extensions["db"].engine.begin() as connection:
        connection.execute(
            IdempotencyKey.__table__.insert(),
            {
                "id": f"other-{key}",
                "client_id": f"website-{world.anna}",
                "key": key,
                "fingerprint": print_,
                "method": "POST",
                "path": "/api/v1/transactions",
                "response_status": 201,
                "response_body": response_body,
                "response_headers": {"Content-Type": "application/json"},
                "created_at": now,
                "completed_at": now,
            },
        )


@pytest.mark.parametrize(("winner_body", "status"), [("same", 201), ("other", 422)])
def test_a_request_that_loses_the_race_for_its_key_rolls_its_posting_back(
    app, client, world, monkeypatch, winner_body, status
):
    # The other request commits its row while ours runs (after our look-up found nothing, before
    # our posting takes its locks: on SQLite nobody commits after that): ours posts, fails to
    # insert the key, rolls back and answers as the winner's request.
    from gateway.api import transactions

    body = _desk(world)
    real = transactions.load_json

    def other_request_commits_first(*args):
        _commit_key_elsewhere(
            app, world, "k-race", body if winner_body == "same" else _desk(world, 5), '{"w":1}'
        )
        return real(*args)

    monkeypatch.setattr(transactions, "load_json", other_request_commits_first)
    response = client.post(
        "/api/v1/transactions",
        data=json.dumps(body),
        content_type="application/json",
        headers=with_key(world.anna_headers, "k-race"),
    )
    assert response.status_code == status
    if status == 201:
        assert response.data == b'{"w":1}'
        assert response.headers["Idempotent-Replayed"] == "true"
    else:
        assert response.get_json()["code"] == "idempotency_mismatch"
    assert _transactions(app) == 0
    with app.app_context():
        assert ledger.get_balance(world.anna_account) == 0
    assert [row.id for row in _key_rows(app)] == ["other-k-race"]


def test_a_posting_and_its_key_commit_once_together(app, client, world):
    statements: list[str] = []
    engine = app.extensions["db"].engine

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    commits: list[int] = []

    def count_commit(_conn):
        commits.append(1)

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", count_commit)
    try:
        response = client.post(
            "/api/v1/transactions", json=_desk(world), headers=with_key(world.anna_headers)
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "commit", count_commit)
    assert response.status_code == 201
    assert len(commits) == 1
    assert "SAVEPOINT" not in statements
