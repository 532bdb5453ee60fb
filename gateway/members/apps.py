"""The "apps with access" page: the third-party clients a member consented to, and revoking them."""

from __future__ import annotations

from flask import flash, redirect, url_for
from werkzeug.wrappers import Response

from gateway.auth.grants import granted_apps, revoke_app
from gateway.auth.session import current_session_member
from gateway.db import db
from gateway.i18n import gettext
from gateway.members.blueprint import bp, login_required, page
from gateway.members.models import Member


def _member() -> Member:
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    return member


@bp.get("/account/apps")
@login_required
def apps() -> Response:
    """Each app: what it may do, since when, and when it last got a token."""
    return page("apps.html", apps=granted_apps(_member().id))


@bp.post("/account/apps/<client_id>/revoke")
@login_required
def revoke(client_id: str) -> Response:
    """Withdraw consent; the app's tokens for this member stop working at once."""
    name = revoke_app(_member().id, client_id)
    db.session.commit()
    if name is None:
        flash(gettext("apps.revoke.unknown"))
    else:
        flash(gettext("apps.revoked", app=name))
    return redirect(url_for("members.apps"))
