"""Hours and times as members read them: "4 h 30 min", "4 h 30 min in debit", "3/12/2026 14:05".

The ledger counts whole minutes; people count hours. Every page that shows an amount of time to
a member (the hours page, the demo site) goes through ``format_minutes`` or ``format_balance``,
so that an amount reads the same everywhere and in both languages. Times are shown in the
community's own time zone (``MEMBERS_TIMEZONE``), not in UTC as they are stored.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from gateway.i18n import gettext

DEFAULT_TIMEZONE = "Europe/Rome"
# A true minus sign: screen readers say "minus", where a hyphen is read as a dash or skipped.
MINUS = "\u2212"


def format_minutes(minutes: int, locale: str | None = None, *, signed: bool = False) -> str:
    """``minutes`` as hours and minutes: "4 h 30 min", "45 min", "2 h", "0 min".

    A negative amount has a minus sign; ``signed`` also gives a positive one its "+" (a line
    of a statement, where the direction matters as much as the size).
    """
    hours, rest = divmod(abs(minutes), 60)
    if hours and rest:
        text = gettext("hours.format.h_min", locale, h=hours, m=rest)
    elif hours:
        text = gettext("hours.format.h", locale, h=hours)
    else:
        text = gettext("hours.format.min", locale, m=rest)
    if minutes < 0:
        return f"{MINUS}{text}"
    return f"+{text}" if signed and minutes > 0 else text


def format_balance(minutes: int, locale: str | None = None) -> str:
    """A balance in words: "4 h 30 min in credit", "4 h 30 min in debit", "0 min: even".

    A bare "-270", or even a signed "4 h 30 min", is easy to misread, above all aloud; the
    words say which way the member stands without relying on the sign.
    """
    amount = format_minutes(abs(minutes), locale)
    if minutes > 0:
        return gettext("hours.balance.credit", locale, amount=amount)
    if minutes < 0:
        return gettext("hours.balance.debit", locale, amount=amount)
    return gettext("hours.balance.even", locale, amount=amount)


def _zone() -> ZoneInfo:
    name = current_app.config.get("MEMBERS_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or DEFAULT_TIMEZONE)


def local_time(moment: datetime) -> datetime:
    """``moment`` (aware, as the database returns it) in the community's time zone."""
    return moment.astimezone(_zone())


def format_date(moment: datetime, locale: str | None = None) -> str:
    """The local date: "3/12/2026" (day first in both languages)."""
    local = local_time(moment)
    return gettext("hours.format.date", locale, d=local.day, m=local.month, y=local.year)


def format_datetime(moment: datetime, locale: str | None = None) -> str:
    """The local date and time: "3/12/2026 alle 14:05", "3/12/2026 at 14:05"."""
    local = local_time(moment)
    return gettext(
        "hours.format.datetime",
        locale,
        date=format_date(moment, locale),
        time=f"{local.hour:02d}:{local.minute:02d}",
    )
