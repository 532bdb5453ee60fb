"""Mail a person can read: plain 8-bit text with each link on one line, an HTML alternative,
and in development each link printed on the console, unscrubbed there and nowhere else."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.db import utcnow
from gateway.members.mail import compose, queue_member_mail
from gateway.members.tokens import MAX_NEXT_IN_LINK, member_for_verification
from tests.factories import create_member
from tests.members.helpers import deliver_mail, link_in, text_of

# An authorization request as long as a real one, to be carried through the mail.
NEXT = (
    "/oauth/authorize?response_type=code&client_id=demo-site&redirect_uri=http%3A%2F%2F127.0"
    ".0.1%3A5002%2Fcallback&scope=openid+profile+email+offline_access+hours%3Aread&state="
    + "s" * 30
    + "&nonce="
    + "n" * 20
    + "&code_challenge="
    + "c" * 43
    + "&code_challenge_method=S256&ui_locales=it&fresh_login=abcdefghijklmnop"
)


def _raw_files(app) -> list[bytes]:
    folder = Path(app.config["GATEWAY_DATA_DIR"]) / "mail"
    return [p.read_bytes() for p in sorted(folder.glob("*.eml"))]


def test_the_link_is_one_unbroken_line_of_the_file(app):
    with app.app_context():
        member = create_member(email="rita@example.org", locale="it")
        queue_member_mail(member.id, "verify", NEXT)
    (message,) = deliver_mail(app)
    (raw,) = _raw_files(app)
    link = f"{app.config['GATEWAY_BASE_URL']}{link_in(message, '/verify-email')}"
    line = next(line for line in raw.decode().splitlines() if "/verify-email?token=" in line)
    assert line.strip() == link  # not quoted-printable: no "=3D", no soft line breaks
    assert "=3D" not in raw.decode()
    plain = message.get_body(preferencelist=("plain",))
    assert plain["Content-Transfer-Encoding"] == "8bit"
    assert "completare l'iscrizione a Milano Sei l'Altro" in raw.decode()  # as written
    assert "completare l'iscrizione" in text_of(message)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f'<a href="{link.replace("&", "&amp;")}">' in html
    assert '<html lang="it">' in html


def test_the_page_to_go_on_to_travels_in_the_link(app):
    with app.app_context():
        member = create_member(email="sara@example.org")
        letter = compose(member, "verify", NEXT)
        token = letter.links[0].split("token=", 1)[1]
        assert member_for_verification(token) == (member, NEXT)


def test_a_page_too_long_for_one_line_stays_out_of_the_link(app):
    with app.app_context():
        member = create_member(email="tina@example.org")
        too_long = "/account/timebanks?x=" + "y" * MAX_NEXT_IN_LINK
        letter = compose(member, "verify", too_long)
        token = letter.links[0].split("token=", 1)[1]
        assert member_for_verification(token) == (member, None)
        assert all(len(line) < 998 for line in bytes(letter.message).decode().splitlines())


def test_in_development_each_link_is_printed_whole_on_the_console(make_app, capsys, caplog):
    app = make_app(GATEWAY_ENV="development")
    with app.app_context():
        member = create_member(email="ugo@example.org", locale="en")
        queue_member_mail(member.id, "verify", "/account/timebanks")
    with caplog.at_level(logging.DEBUG):
        (message,) = deliver_mail(app)
    link = f"{app.config['GATEWAY_BASE_URL']}{link_in(message, '/verify-email')}"
    printed = capsys.readouterr().err.splitlines()
    assert f"mail to ugo@example.org (Confirm your address): {link}" in printed
    token = link.split("token=", 1)[1]
    # The log lines stay scrubbed: the console line is written past them, on purpose.
    assert token not in caplog.text
    assert "mail written to" in caplog.text


@pytest.mark.parametrize("environment", ["production", "testing"])
def test_elsewhere_no_link_is_ever_printed(make_app, capsys, environment):
    app = make_app(GATEWAY_ENV=environment, SESSION_COOKIE_SECURE=False)
    with app.app_context():
        member = create_member(email="vera@example.org", email_verified_at=utcnow())
        queue_member_mail(member.id, "reset")
    (message,) = deliver_mail(app)
    token = link_in(message, "/password/reset").split("token=", 1)[1]
    assert token not in capsys.readouterr().err
