"""Mail to members, sent by an RQ job so that a slow mail server never slows a page.

Jobs carry only the member id, the kind of message and the page to go on to: addresses and
links are built when the job runs, so neither Redis nor RQ's log lines hold personal data.
Without ``MAIL_URL`` (in development and tests) each message is written as an ``.eml`` file
under ``$GATEWAY_DATA_DIR/mail`` and its path logged; in development its links are also
printed on the console, one line each, for a person to open.

Every message is plain text a person can read, with an HTML alternative. The text is sent
as 8-bit UTF-8, not quoted-printable: a link is one unbroken line whether the message is read
in a mail program or with ``cat``.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
import sys
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

from flask import current_app
from redis.exceptions import RedisError

from gateway.db import db
from gateway.i18n import gettext
from gateway.jobs import task
from gateway.members.models import Member
from gateway.members.tokens import reset_token, verification_token

log = logging.getLogger(__name__)

KINDS = ("verify", "reset", "already_registered")


def queue_member_mail(member_id: str, kind: str, next_url: str | None = None) -> None:
    """Enqueue a message to the member; call after the change it announces is committed."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    try:
        current_app.extensions["queue"].enqueue(
            send_member_mail, member_id, kind, next_url, job_timeout=60, retry=None
        )
    except RedisError:
        # The member can ask again from the page; the change itself is already saved.
        log.warning("could not enqueue a %s mail: Redis is unavailable", kind)


@dataclass(frozen=True)
class Letter:
    """A composed message and the links in it (what the development console shows)."""

    message: EmailMessage
    links: tuple[str, ...]


def _link(path: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{current_app.config['GATEWAY_BASE_URL']}{path}?{query}"


def _body_and_links(member: Member, kind: str, next_url: str | None) -> tuple[str, list[str]]:
    locale = member.locale
    name = member.display_name
    if kind == "verify":
        link = _link("/verify-email", token=verification_token(member, next_url))
        return gettext("mail.verify.body", locale=locale, name=name, link=link), [link]
    if kind == "reset":
        link = _link("/password/reset", token=reset_token(member, next_url))
        return gettext("mail.reset.body", locale=locale, name=name, link=link), [link]
    # Someone signed up again with this address. Unconfirmed, the owner finishes signing up
    # by choosing the password (a reset, which ends whatever logins another person holds);
    # confirmed, the owner logs in, with the email filled in, or chooses a new password.
    reset = _link("/password/reset", token=reset_token(member, next_url))
    if not member.is_verified:
        body = gettext(
            "mail.already_registered.unconfirmed.body", locale=locale, name=name, link=reset
        )
        return body, [reset]
    login = _link("/login", login_hint=member.email, next=next_url)
    body = gettext(
        "mail.already_registered.body",
        locale=locale,
        name=name,
        login_link=login,
        reset_link=reset,
    )
    return body, [login, reset]


def _html(text: str, links: list[str], locale: str) -> str:
    """The same words as HTML: paragraphs, and each link a link."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        escaped = html.escape(paragraph)
        for link in links:
            quoted = html.escape(link)
            escaped = escaped.replace(quoted, f'<a href="{quoted}">{quoted}</a>')
        paragraphs.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return (
        f'<!doctype html>\n<html lang="{locale}"><head><meta charset="utf-8"></head>\n'
        "<body>\n" + "\n".join(paragraphs) + "\n</body></html>\n"
    )


def compose(member: Member, kind: str, next_url: str | None = None) -> Letter:
    """The message of ``kind`` for ``member``, in their language."""
    text, links = _body_and_links(member, kind, next_url)
    message = EmailMessage()
    message["Subject"] = gettext(f"mail.{kind}.subject", locale=member.locale)
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = member.email
    message["Message-ID"] = f"<{uuid.uuid4()}@gateway>"
    message.set_content(text, cte="8bit")
    message.add_alternative(_html(text, links, member.locale), subtype="html", cte="8bit")
    return Letter(message, tuple(links))


def _show_on_console(letter: Letter) -> None:
    """Each link on one line of the console, for the person trying the gateway out.

    Written past the logging handlers on purpose: log lines are scrubbed of tokens (and must
    stay so), but this line exists to be copied. Development only, never in production.
    """
    subject = letter.message["Subject"]
    for link in letter.links:
        print(f"mail to {letter.message['To']} ({subject}): {link}", file=sys.stderr, flush=True)


def _deliver(letter: Letter, kind: str) -> None:
    message = letter.message
    url = current_app.config.get("MAIL_URL")
    if not url:
        folder = Path(current_app.config["GATEWAY_DATA_DIR"]) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}-{kind}.eml"
        path.write_bytes(bytes(message))
        log.info("mail written to %s (no MAIL_URL set)", path)
        if current_app.config["GATEWAY_ENV"] == "development":
            _show_on_console(letter)
        return
    parts = urlsplit(url)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            parts.hostname or "localhost", parts.port or 465, context=context, timeout=30
        )
    else:
        server = smtplib.SMTP(parts.hostname or "localhost", parts.port or 587, timeout=30)
        server.starttls(context=context)
    with server:
        server.ehlo_or_helo_if_needed()
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        options = ("BODY=8BITMIME",) if server.has_extn("8bitmime") else ()
        server.send_message(message, mail_options=options)
    log.info("%s mail sent", kind)


@task
def send_member_mail(member_id: str, kind: str, next_url: str | None = None) -> str:
    """The job: compose and deliver one message (skipped for members gone or disabled)."""
    member = db.session.get(Member, member_id)
    if member is None or not member.is_active:
        return "skipped"
    _deliver(compose(member, kind, next_url), kind)
    return "sent"
