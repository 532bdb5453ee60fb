"""The sandbox's OAuth 2 server: client credentials for the partner, code + PKCE for members.

Tokens and codes are random strings stored as SHA-256 hashes. ``/oauth/authorize`` shows a
trivial consent page: the member types the e-mail of their sandbox account (there are no
passwords here) and allows or denies. A redirect URI must point at an allowed host
(``SANDBOX_REDIRECT_HOSTS``, loopback by default); a bad one gets an error page, never a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from gateway_sandbox.problems import SandboxProblem
from gateway_sandbox.store import Store

__all__ = ["PARTNER_SCOPES", "Caller", "bp", "hash_secret", "require_token"]

bp = Blueprint("sandbox_oauth", __name__)

PARTNER_SCOPES = ("members:write", "transfers:write", "transfers:read")
MEMBER_SCOPES = ("profile",)
CODE_TTL_SECONDS = 600
REFRESH_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Caller:
    """Who a bearer token speaks for: a partner, and for member tokens the member too."""

    client_id: str
    member_id: str | None
    scopes: frozenset[str]


def hash_secret(value: str) -> str:
    """SHA-256 of a token, code or client secret (what is stored)."""
    return hashlib.sha256(value.encode()).hexdigest()


def _store() -> Store:
    return cast(Store, current_app.extensions["sandbox"].store)


def _oauth_error(status: int, error: str, detail: str) -> SandboxProblem:
    # Problem details as the contract says, carrying RFC 6749's `error` for OAuth clients too.
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    return SandboxProblem(status, error, detail, headers=headers, error=error)


def require_token(scope: str | None = None, *, member: bool = False) -> Caller:
    """The caller of a bearer token with ``scope``; 401 or 403 problem otherwise."""
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token:
        raise SandboxProblem(
            401,
            "invalid_token",
            "a bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="sandbox"'},
        )
    with _store().reading() as connection:
        row = connection.execute(
            "SELECT * FROM tokens WHERE hash = ? AND kind = 'access'", (hash_secret(token),)
        ).fetchone()
    if row is None or row["revoked"] or row["expires_at"] <= time.time():
        raise SandboxProblem(
            401,
            "invalid_token",
            "the token is unknown, expired or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="sandbox", error="invalid_token"'},
        )
    caller = Caller(row["client_id"], row["member_id"], frozenset(row["scope"].split()))
    if member and caller.member_id is None:
        raise SandboxProblem(401, "member_token_required", "this needs a member's own token")
    if scope is not None and scope not in caller.scopes:
        raise SandboxProblem(
            403,
            "insufficient_scope",
            f"the token lacks the scope {scope}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    g.caller = caller
    return caller


def _client() -> str:
    """The authenticated client (HTTP Basic or client_secret_post); 401 otherwise."""
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        client_id, secret = auth.username or "", auth.password or ""
    else:
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret", "")
    with _store().reading() as connection:
        row = connection.execute(
            "SELECT secret_hash FROM clients WHERE id = ?", (client_id,)
        ).fetchone()
    if row is None or not hmac.compare_digest(row["secret_hash"], hash_secret(secret)):
        raise _oauth_error(401, "invalid_client", "client authentication failed")
    return client_id


def _issue(client_id: str, member_id: str | None, scope: str, *, refresh: bool) -> dict[str, Any]:
    ttl = int(current_app.config["SANDBOX_TOKEN_TTL_SECONDS"])
    access = secrets.token_urlsafe(32)
    now = time.time()
    rows = [(hash_secret(access), "access", client_id, member_id, scope, now + ttl)]
    answer: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    }
    if refresh:
        refresh_token = secrets.token_urlsafe(32)
        rows.append(
            (
                hash_secret(refresh_token),
                "refresh",
                client_id,
                member_id,
                scope,
                now + REFRESH_TTL_SECONDS,
            )
        )
        answer["refresh_token"] = refresh_token
    with _store().transaction() as connection:
        connection.executemany(
            "INSERT INTO tokens (hash, kind, client_id, member_id, scope, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return answer


@bp.post("/oauth/token")
def token() -> Response:
    """The token endpoint: client_credentials, authorization_code, refresh_token."""
    grant = request.form.get("grant_type", "")
    client_id = _client()
    if grant == "client_credentials":
        asked = request.form.get("scope", "").split()
        if any(s not in PARTNER_SCOPES for s in asked):
            raise _oauth_error(400, "invalid_scope", f"scopes offered: {' '.join(PARTNER_SCOPES)}")
        answer = _issue(client_id, None, " ".join(asked or PARTNER_SCOPES), refresh=False)
    elif grant == "authorization_code":
        answer = _exchange_code(client_id)
    elif grant == "refresh_token":
        answer = _refresh(client_id)
    else:
        raise _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not offered")
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _exchange_code(client_id: str) -> dict[str, Any]:
    code = request.form.get("code", "")
    verifier = request.form.get("code_verifier", "")
    redirect_uri = request.form.get("redirect_uri", "")
    with _store().transaction() as connection:
        row = connection.execute(
            "SELECT * FROM codes WHERE hash = ?", (hash_secret(code),)
        ).fetchone()
        if row is not None:
            # A code is good once, whatever happens next.
            connection.execute("UPDATE codes SET used = 1 WHERE hash = ?", (row["hash"],))
    if (
        row is None
        or row["used"]
        or row["expires_at"] <= time.time()
        or row["client_id"] != client_id
    ):
        raise _oauth_error(400, "invalid_grant", "the code is unknown, used or expired")
    if row["redirect_uri"] != redirect_uri:
        raise _oauth_error(400, "invalid_grant", "redirect_uri differs from the authorization's")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    if not verifier or not hmac.compare_digest(challenge.decode(), row["challenge"]):
        raise _oauth_error(400, "invalid_grant", "the code_verifier does not match")
    with _store().transaction() as connection:
        connection.execute(
            "INSERT OR IGNORE INTO links (client_id, member_id) VALUES (?, ?)",
            (client_id, row["member_id"]),
        )
    return _issue(client_id, row["member_id"], row["scope"], refresh=True)


def _refresh(client_id: str) -> dict[str, Any]:
    presented = hash_secret(request.form.get("refresh_token", ""))
    with _store().transaction() as connection:
        row = connection.execute(
            "SELECT * FROM tokens WHERE hash = ? AND kind = 'refresh'", (presented,)
        ).fetchone()
        valid = (
            row is not None
            and not row["revoked"]
            and row["expires_at"] > time.time()
            and row["client_id"] == client_id
        )
        if valid:
            # Rotation: the presented refresh token is spent.
            connection.execute("UPDATE tokens SET revoked = 1 WHERE hash = ?", (presented,))
    if not valid or row is None:
        raise _oauth_error(400, "invalid_grant", "the refresh token is unknown, used or expired")
    return _issue(client_id, row["member_id"], row["scope"], refresh=True)


CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox timebank: link your account</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:3rem auto;line-height:1.5}
.error{color:#a00}</style></head>
<body>
<h1>Link your timebank account</h1>
<p><strong>{{ client_name }}</strong> asks to see your sandbox timebank profile
({{ scope }}) and to record hours for you.</p>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<form method="post" action="{{ url_for('sandbox_oauth.authorize_decision') }}">
{% for name, value in params.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}
<label>Your e-mail on the sandbox timebank<br>
<input type="email" name="email" value="{{ email }}" required autofocus></label>
<p><button name="decision" value="allow">Allow</button>
<button name="decision" value="deny" formnovalidate>Deny</button></p>
</form>
<p><small>This is a development stand-in for a partner timebank: there are no passwords.</small></p>
</body></html>
"""

ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox timebank: cannot authorize</title></head>
<body><h1>This link cannot be authorized</h1><p>{{ message }}</p></body></html>
"""

AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _error_page(message: str) -> tuple[str, int]:
    return render_template_string(ERROR_PAGE, message=message), 400


def _redirect_back(redirect_uri: str, **params: str) -> WerkzeugResponse:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(f"{redirect_uri}{separator}{urlencode(params)}", code=302)


def _authorize_params(
    source: Any,
) -> tuple[dict[str, str], WerkzeugResponse | tuple[str, int] | None]:
    """The authorize parameters, and the answer to give at once if they are not acceptable."""
    params = {name: source.get(name, "") for name in AUTHORIZE_PARAMS}
    with _store().reading() as connection:
        client = connection.execute(
            "SELECT name FROM clients WHERE id = ?", (params["client_id"],)
        ).fetchone()
    if client is None:
        return params, _error_page("The application asking is not known to this timebank.")
    target = urlsplit(params["redirect_uri"])
    allowed = current_app.config["SANDBOX_REDIRECT_HOSTS"]
    if target.scheme not in ("http", "https") or (target.hostname or "") not in allowed:
        return params, _error_page("The address to return to is not allowed.")
    # From here on the redirect URI is trusted: errors go back to the application.
    if params["response_type"] != "code":
        return params, _redirect_back(
            params["redirect_uri"], error="unsupported_response_type", state=params["state"]
        )
    scopes = params["scope"].split() or list(MEMBER_SCOPES)
    problems = [
        not params["state"],
        not params["code_challenge"],
        params["code_challenge_method"] != "S256",
        any(s not in MEMBER_SCOPES for s in scopes),
    ]
    if any(problems):
        return params, _redirect_back(
            params["redirect_uri"], error="invalid_request", state=params["state"]
        )
    params["scope"] = " ".join(scopes)
    g.client_name = client["name"]
    return params, None


@bp.get("/oauth/authorize")
def authorize() -> Any:
    """The consent page."""
    params, answer = _authorize_params(request.args)
    if answer is not None:
        return answer
    return render_template_string(
        CONSENT_PAGE,
        client_name=g.client_name,
        scope=params["scope"],
        params=params,
        email="",
        error=None,
    )


@bp.post("/oauth/authorize")
def authorize_decision() -> Any:
    """The member's answer: a code back to the application, or access_denied."""
    params, answer = _authorize_params(request.form)
    if answer is not None:
        return answer
    if request.form.get("decision") != "allow":
        return _redirect_back(params["redirect_uri"], error="access_denied", state=params["state"])
    email = request.form.get("email", "").strip()
    with _store().reading() as connection:
        member = connection.execute(
            "SELECT id FROM members WHERE email_key = ? AND status = 'active'", (email.casefold(),)
        ).fetchone()
    if member is None:
        page = render_template_string(
            CONSENT_PAGE,
            client_name=g.client_name,
            scope=params["scope"],
            params=params,
            email=email,
            error="No active account has that e-mail address.",
        )
        return page, 200
    code = secrets.token_urlsafe(32)
    with _store().transaction() as connection:
        connection.execute(
            "INSERT INTO codes (hash, client_id, member_id, redirect_uri, challenge, scope, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                hash_secret(code),
                params["client_id"],
                member["id"],
                params["redirect_uri"],
                params["code_challenge"],
                params["scope"],
                time.time() + CODE_TTL_SECONDS,
            ),
        )
    return _redirect_back(params["redirect_uri"], code=code, state=params["state"])
