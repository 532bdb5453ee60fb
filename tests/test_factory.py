"""The app factory, settings and the error shape."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings, normalize_database_url, redact_url


def test_config_overrides_environment(make_app):
    app = make_app(QUEUE_NAME="other")
    assert app.config["QUEUE_NAME"] == "other"
    assert app.config["TESTING"] is True


def test_defaults_need_nothing_set(tmp_path):
    settings = load_settings({"GATEWAY_DATA_DIR": str(tmp_path)})
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'gateway.db'}"
    assert settings["REDIS_URL"] is None
    assert settings["GATEWAY_BASE_URL"] == "http://127.0.0.1:5000"
    # the development secret is generated once, kept private, and reused
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (
        load_settings({"GATEWAY_DATA_DIR": str(tmp_path)})["SECRET_KEY"] == settings["SECRET_KEY"]
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "supports sqlite and postgresql"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must start with"),
        ({"GATEWAY_ENV": "staging"}, "GATEWAY_ENV must be one of"),
        ({"GATEWAY_ENV": "production"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"WEB_CONCURRENCY": "many"}, "WEB_CONCURRENCY must be a whole number"),
        ({"CALLBACK_MAX_BYTES": "10"}, "CALLBACK_MAX_BYTES must be at least 1024"),
        ({"SYNC_BACKOFF_BASE_SECONDS": "soon"}, "SYNC_BACKOFF_BASE_SECONDS must be a number"),
        ({"SYNC_BACKOFF_CAP_SECONDS": "nan"}, "SYNC_BACKOFF_CAP_SECONDS must be at least"),
        ({"SYNC_BACKOFF_CAP_SECONDS": "0"}, "SYNC_BACKOFF_CAP_SECONDS must be at least"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "must be true or false"),
        ({"GATEWAY_BASE_URL": "ftp://x"}, r"GATEWAY_BASE_URL must be an http\(s\) URL"),
        ({"GATEWAY_SITE_URL": "www.example.org"}, r"GATEWAY_SITE_URL must be an http\(s\) URL"),
    ],
)
def test_invalid_settings_say_what_is_wrong(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({"GATEWAY_DATA_DIR": str(tmp_path), **environ})
    assert "\n" not in str(info.value)


def test_backoff_comes_from_the_environment(tmp_path):
    settings = load_settings(
        {
            "GATEWAY_DATA_DIR": str(tmp_path),
            "SYNC_BACKOFF_BASE_SECONDS": "0.5",
            "SYNC_BACKOFF_CAP_SECONDS": "4",
        }
    )
    assert (settings["SYNC_BACKOFF_BASE_SECONDS"], settings["SYNC_BACKOFF_CAP_SECONDS"]) == (
        0.5,
        4.0,
    )
    defaults = load_settings({"GATEWAY_DATA_DIR": str(tmp_path)})
    assert (defaults["SYNC_BACKOFF_BASE_SECONDS"], defaults["SYNC_BACKOFF_CAP_SECONDS"]) == (
        2.0,
        600.0,
    )


def test_postgres_urls_use_psycopg():
    assert normalize_database_url("postgresql://postgres@127.0.0.1:5432/test").startswith(
        "postgresql+psycopg://"
    )


def test_redact_hides_passwords():
    assert "s3cret" not in redact_url("postgresql://u:s3cret@h/db")
    assert "s3cret" not in redact_url("redis://:s3cret@h:6379/0")


def test_unknown_path_is_problem_json(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/no/such/path"


def test_wrong_method_is_problem_json_with_allow(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_problem_json_and_logged(app, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "kaboom" not in response.get_data(as_text=True)
    assert "unhandled error on GET /boom" in caplog.text
