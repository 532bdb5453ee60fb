"""Signup, verification, login, logout: pages in both languages, no account enumeration."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.db import db
from gateway.members.models import Member
from tests.factories import create_member
from tests.members.helpers import csrf, deliver_mail, link_in

PASSWORD = "una frase lunga abbastanza"


def _signup(client, **fields):
    data = {
        "email": "Anna@Example.org",
        "display_name": "Anna",
        "password": PASSWORD,
        "locale": "it",
        "skills": ["babysitting", "shopping"],
        "municipio": "6",
        "csrf_token": csrf(client),
    }
    data.update(fields)
    return client.post("/signup", data=data)


@pytest.mark.parametrize(("language", "words"), [("it", "Iscriviti"), ("en", "Sign up")])
def test_signup_page_speaks_the_language(client, language, words):
    page = client.get("/signup", headers={"Accept-Language": language})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert words in html
    assert f'<html lang="{language}">' in html
    for field in ("email", "display_name", "password", "locale", "municipio"):
        assert f'<label for="{field}">' in html


def test_ui_locales_wins_over_accept_language(client):
    html = client.get("/signup?ui_locales=en", headers={"Accept-Language": "it"}).get_data(
        as_text=True
    )
    assert "Sign up" in html
    assert "Sign up" in client.get("/login", headers={"Accept-Language": "it"}).get_data(
        as_text=True
    )


def test_signup_then_verify_logs_in_and_goes_next(app, client):
    response = _signup(client, next="/oauth/authorize?client_id=x")
    assert response.status_code == 200
    assert "anna@example.org" in response.get_data(as_text=True)
    with app.app_context():
        member = db.session.query(Member).filter_by(email="anna@example.org").one()
        assert member.skills == ["babysitting", "shopping"]
        assert member.municipio == 6
        assert member.password_hash.startswith("scrypt:")
        assert member.email_verified_at is None
    (message,) = deliver_mail(app)
    assert message["To"] == "anna@example.org"
    assert message["Subject"] == "Conferma il tuo indirizzo"
    verified = client.get(link_in(message, "/verify-email"))
    assert verified.status_code == 302
    assert verified.headers["Location"] == "/oauth/authorize?client_id=x"
    assert client.get("/account").status_code == 200
    with app.app_context():
        assert db.session.get(Member, member.id).email_verified_at is not None
    # The link logs in once only.
    client.post("/logout", data={"csrf_token": csrf(client)})
    again = client.get(link_in(message, "/verify-email"))
    assert again.status_code == 200
    assert client.get("/account").status_code == 302


def test_signup_errors_sit_next_to_their_fields(client):
    response = _signup(client, email="not-an-email", password="short", municipio="12")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    assert 'id="email" ' in html
    assert 'aria-invalid="true"' in html
    assert 'id="password-error"' in html
    assert "almeno 12 caratteri" in html
    assert 'id="municipio-error"' in html


def test_signup_with_a_taken_email_looks_the_same(app, client):
    with app.app_context():
        create_member(email="anna@example.org", password=PASSWORD)
    fresh = _signup(client, email="bruno@example.org")
    taken = _signup(client)
    assert taken.status_code == fresh.status_code == 200
    assert taken.get_data(as_text=True).replace("anna", "X") == fresh.get_data(
        as_text=True
    ).replace("bruno", "X")
    subjects = sorted(m["Subject"] for m in deliver_mail(app))
    assert subjects == ["Conferma il tuo indirizzo", "Hai già un account"]


def test_signup_without_csrf_is_refused_and_saves_nothing(app, client):
    response = client.post(
        "/signup", data={"email": "x@example.org", "display_name": "X", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    with app.app_context():
        assert db.session.query(Member).count() == 0


def test_login_and_logout(app, client):
    with app.app_context():
        member = create_member(email="carla@example.org", password=PASSWORD)
    page = client.get("/login?login_hint=carla@example.org&next=/account/timebanks")
    assert 'value="carla@example.org"' in page.get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "email": "Carla@Example.org",
            "password": PASSWORD,
            "csrf_token": csrf(client),
            "next": "/account/timebanks",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/timebanks"
    account = client.get("/account")
    assert account.status_code == 200
    assert member.email in account.get_data(as_text=True)
    assert client.get("/logout").status_code == 200  # a page asking, not a logout
    assert client.get("/account").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert client.get("/account").headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "x"],
)
def test_login_never_redirects_off_site(app, client, target):
    with app.app_context():
        create_member(email="dario@example.org", password=PASSWORD)
    response = client.post(
        "/login",
        data={
            "email": "dario@example.org",
            "password": PASSWORD,
            "csrf_token": csrf(client),
            "next": target,
        },
    )
    assert response.headers["Location"] == "/account"


def test_login_failure_is_one_message_for_every_reason(app, client):
    with app.app_context():
        create_member(email="elena@example.org", password=PASSWORD)
        create_member(email="fabio@example.org", password=PASSWORD, status="disabled")
    answers = set()
    for email, password in (
        ("elena@example.org", "wrong password here"),
        ("nobody@example.org", PASSWORD),
        ("fabio@example.org", PASSWORD),
    ):
        response = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
        )
        assert response.status_code == 401
        html = response.get_data(as_text=True)
        answers.add(html.replace(email, "EMAIL"))
    assert len(answers) == 1
    assert "Email o password non corrette." in answers.pop()


def test_login_without_csrf_is_refused(app, client):
    with app.app_context():
        create_member(email="gino@example.org", password=PASSWORD)
    response = client.post("/login", data={"email": "gino@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_login_is_rate_limited_per_account_and_per_ip(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=3, LOGIN_RATE_LIMIT_PER_IP=5)
    client = app.test_client()
    with app.app_context():
        create_member(email="ivo@example.org", password=PASSWORD)
    token = csrf(client)
    statuses = [
        client.post(
            "/login", data={"email": "ivo@example.org", "password": "nope" * 4, "csrf_token": token}
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    limited = client.post(
        "/login", data={"email": "ivo@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert limited.status_code == 429  # even the right password waits
    assert int(limited.headers["Retry-After"]) > 0
    assert "Troppi tentativi" in limited.get_data(as_text=True)
    # Other accounts from the same address hit the per-address limit next.
    other = client.post(
        "/login", data={"email": "zoe@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert other.status_code == 429


def test_home_page_points_people_somewhere(app, client):
    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'href="/signup"' in html
    assert 'href="/docs"' in html
    with app.app_context():
        operator = create_member(email="boss@example.org", is_admin=True, locale="en")
    from tests.auth.oidc_helpers import log_in

    log_in(client, operator)
    assert 'href="/admin"' in client.get("/").get_data(as_text=True)


def test_signup_is_rate_limited_per_address_and_per_ip(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=2, LOGIN_RATE_LIMIT_PER_IP=4)
    client = app.test_client()
    same_address = [_signup(client).status_code for _ in range(3)]
    assert same_address == [200, 200, 429]
    others = [_signup(client, email=f"n{i}@example.org").status_code for i in range(3)]
    assert others == [200, 429, 429]  # the address's third try counted against the IP too
    limited = _signup(client, email="late@example.org")
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 2
