"""Mail to members, sent by an RQ job so that a slow mail server never slows a page.

Jobs carry only the member id and the kind of message: addresses and links are built when the
job runs, so neither Redis nor RQ's log lines hold personal data. Without ``MAIL_URL`` (in
development and tests) each message is written as an ``.eml`` file under
``$GATEWAY_DATA_DIR/mail`` and its path logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
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


def _link(path: str, **params: str) -> str:
    return f"{current_app.config['GATEWAY_BASE_URL']}{path}?{urlencode(params)}"


def compose(member: Member, kind: str, next_url: str | None = None) -> EmailMessage:
    """The message of ``kind`` for ``member``, in their language."""
    locale = member.locale
    if kind == "verify":
        link = _link("/verify-email", token=verification_token(member, next_url))
    elif kind == "reset":
        link = _link("/password/reset", token=reset_token(member))
    else:
        link = _link("/login")
    message = EmailMessage()
    message["Subject"] = gettext(f"mail.{kind}.subject", locale=locale)
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = member.email
    message["Message-ID"] = f"<{uuid.uuid4()}@gateway>"
    message.set_content(
        gettext(f"mail.{kind}.body", locale=locale, name=member.display_name, link=link)
    )
    return message


def _deliver(message: EmailMessage, kind: str) -> None:
    url = current_app.config.get("MAIL_URL")
    if not url:
        folder = Path(current_app.config["GATEWAY_DATA_DIR"]) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}-{kind}.eml"
        path.write_bytes(bytes(message))
        log.info("mail written to %s (no MAIL_URL set)", path)
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
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(message)
    log.info("%s mail sent", kind)


@task
def send_member_mail(member_id: str, kind: str, next_url: str | None = None) -> str:
    """The job: compose and deliver one message (skipped for members gone or disabled)."""
    member = db.session.get(Member, member_id)
    if member is None or not member.is_active:
        return "skipped"
    _deliver(compose(member, kind, next_url), kind)
    return "sent"
