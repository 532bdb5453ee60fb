"""The three kinds of OAuth client, and the grants and scopes each kind may ever hold.

A client's registration (its grants and scope) is checked against its kind when it is made,
and again whenever a grant or a token is used, so that no stored row can reach beyond its kind.
"""

from __future__ import annotations

from gateway.auth.scopes import MEMBER_SCOPES, SCOPES

FIRST_PARTY = "first_party"
THIRD_PARTY = "third_party"
MACHINE = "machine"
KINDS = (FIRST_PARTY, THIRD_PARTY, MACHINE)

DESCRIPTIONS = {
    FIRST_PARTY: "the project's own website: no consent screen; its back end may also use "
    "client credentials and post between any members",
    THIRD_PARTY: "a relying party: members' tokens only, after the member's consent",
    MACHINE: "a back end without members: client credentials only",
}

CODE = "authorization_code"
REFRESH = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"

GRANTS: dict[str, frozenset[str]] = {
    FIRST_PARTY: frozenset({CODE, REFRESH, CLIENT_CREDENTIALS}),
    THIRD_PARTY: frozenset({CODE, REFRESH}),
    MACHINE: frozenset({CLIENT_CREDENTIALS}),
}

# Operating the gateway is never delegated to a relying party; a machine token has no member,
# so it can hold only what needs none.
KIND_SCOPES: dict[str, frozenset[str]] = {
    FIRST_PARTY: frozenset(SCOPES),
    THIRD_PARTY: frozenset(SCOPES) - {"admin"},
    MACHINE: frozenset({"admin"}),
}

# What a client-credentials token may carry: no scope that describes or acts for a member.
CLIENT_CREDENTIALS_SCOPES = frozenset(SCOPES) - MEMBER_SCOPES
