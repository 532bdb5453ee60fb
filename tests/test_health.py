"""Liveness and readiness."""

from __future__ import annotations


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_both_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "redis": "ok"}


def test_readyz_names_redis_when_it_does_not_answer(make_app, unused_port):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{unused_port}/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["failing"] == {"redis": "ConnectionError"}
    assert response.headers["Retry-After"] == "5"


def test_readyz_names_the_database_when_it_does_not_answer(make_app, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "gateway.db"
    app = make_app(DATABASE_URL=f"sqlite:///{missing}")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert list(response.get_json()["failing"]) == ["database"]
