"""Helpers for the members' page tests: CSRF tokens, delivered mail, links in mail."""

from __future__ import annotations

import email
import re
from pathlib import Path
from urllib.parse import urlsplit

from gateway.jobs import make_worker


def csrf(client) -> str:
    """The session's CSRF token (a GET of any page creates it)."""
    with client.session_transaction() as session:
        if "csrf" not in session:
            session["csrf"] = "t" * 43
        return session["csrf"]


def deliver_mail(app) -> list[email.message.EmailMessage]:
    """Run the queued mail jobs and return every message written so far, oldest first."""
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)
    folder = Path(app.config["GATEWAY_DATA_DIR"]) / "mail"
    paths = (
        sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []
    )
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def text_of(message) -> str:
    """The plain-text body of ``message`` (which also has an HTML alternative)."""
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message, path: str) -> str:
    """The site-relative link to ``path`` in ``message``."""
    body = text_of(message)
    match = re.search(r"https?://\S+" + re.escape(path) + r"\S*", body)
    assert match, body
    parts = urlsplit(match.group(0))
    return f"{parts.path}?{parts.query}"
