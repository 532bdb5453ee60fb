"""Italian first, English too: the page locale and the message catalogs.

Catalogs live in ``gateway/translations/<area>.json`` as ``{"key": {"it": ..., "en": ...}}``,
one file per area (members, admin, ...) so that areas never edit each other's strings.
The locale is chosen from, in order: the language the member picked with the header's
switch, ``ui_locales`` on an authorization request (both kept in the session), the
logged-in member's preference, ``Accept-Language``, then Italian. A site's ``ui_locales``
is a hint about a person it does not know; a pick is that person's own word, so it wins.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Flask, g, has_request_context, request, session

LOCALES = ("it", "en")
DEFAULT_LOCALE = "it"
_CATALOG_DIR = Path(__file__).parent / "translations"


@cache
def _catalog() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(_CATALOG_DIR.glob("*.json")):
        for key, texts in json.loads(path.read_text(encoding="utf-8")).items():
            if key in merged:
                raise ValueError(f"message key {key!r} is defined twice ({path.name})")
            missing = set(LOCALES) - texts.keys()
            if missing:
                raise ValueError(f"message {key!r} in {path.name} lacks {sorted(missing)}")
            merged[key] = texts
    return merged


def pick_locale(ui_locales: str | None) -> str | None:
    """The first of a space-separated ``ui_locales`` list that we speak."""
    for tag in (ui_locales or "").split():
        primary = tag.split("-")[0].lower()
        if primary in LOCALES:
            return primary
    return None


def chosen_locale() -> str | None:
    """The language the member picked in this browser session, if they did."""
    return session.get("locale") if session.get("locale_chosen") else None


def remember_ui_locales(ui_locales: str | None) -> None:
    """Keep a request's ``ui_locales`` hint for the pages that follow it, unless the member
    picked a language."""
    locale = pick_locale(ui_locales)
    if locale and not chosen_locale():
        session["locale"] = locale
        g.locale = locale


def choose_locale(locale: str) -> None:
    """The member picked ``locale``: speak it on this page and the following ones of this
    browser session, whatever sites hint."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}")
    session["locale"] = locale
    session["locale_chosen"] = True
    g.locale = locale


def current_locale() -> str:
    """The locale of the current page."""
    if not has_request_context():
        return DEFAULT_LOCALE
    if "locale" in g:
        return g.locale
    locale = chosen_locale() or pick_locale(request.args.get("ui_locales")) or session.get("locale")
    if locale not in LOCALES:
        from gateway.auth.session import current_session_member

        member = current_session_member()
        locale = member.locale if member is not None else None
    if locale not in LOCALES:
        locale = request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE
    g.locale = locale
    return locale


def gettext(key: str, locale: str | None = None, **values: object) -> str:
    """The text for ``key`` in ``locale`` (default: the page's), formatted with ``values``.

    An unknown key raises: a missing string is a bug to find in tests, not a blank on a page.
    """
    text = _catalog()[key][locale or current_locale()]
    return text.format(**values) if values else text


def init_app(app: Flask) -> None:
    """Give templates ``_()``, ``current_locale()`` and ``LOCALES``."""
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["LOCALES"] = LOCALES
