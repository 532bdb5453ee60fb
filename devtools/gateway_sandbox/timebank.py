"""The sandbox timebank's rules: members, wallets, transfers and what partners may see.

Functions take a connection inside a write transaction (or a read) and raise ``SandboxProblem``
with the contract's codes. A partner sees the members it registered, the members who linked their
account to it (authorization code), and its own clearing wallet; transfers touching any of
those wallets; and gets events about them.

Amounts are minutes. A payer's balance may not fall below minus its credit limit, except through a
reversal: a correction must always be possible. A reversal is a new, opposite transfer whose
``reversal_of`` names the original, which becomes ``reversed``; its event, ``transfer.reversed``,
carries the reversing transfer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import sqlite3
from datetime import UTC, datetime
from typing import Any, cast

from gateway_sandbox.faults import Faults
from gateway_sandbox.problems import SandboxProblem
from gateway_sandbox.webhooks import enqueue_event

__all__ = [
    "create_native_member",
    "create_transfer",
    "erase_member",
    "get_member",
    "list_members",
    "list_transfers",
    "member_doc",
    "now_iso",
    "record_transfer",
    "register_member",
    "reverse_transfer",
    "update_member",
    "wallet_doc",
]

LOCALES = ("it", "en")
MAX_MINUTES = 14_400
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

VISIBLE_WALLETS = """
    SELECT w.id FROM wallets w LEFT JOIN members m ON m.id = w.member_id
    WHERE w.client_id = :client OR m.client_id = :client
       OR m.id IN (SELECT member_id FROM links WHERE client_id = :client)
"""


def now_iso() -> str:
    """The current time as RFC 3339 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _one(connection: sqlite3.Connection, query: str, *params: Any) -> sqlite3.Row:
    """The one row ``query`` finds (callers know it exists)."""
    return cast(sqlite3.Row, connection.execute(query, params).fetchone())


def _invalid(errors: dict[str, list[str]]) -> SandboxProblem:
    return SandboxProblem(422, "validation_error", "the request is not valid", errors=errors)


def encode_cursor(seq: int) -> str:
    """An opaque cursor for the position after row ``seq``."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The row position a cursor stands for (0: from the start); 422 if it is not ours."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, seq = text.partition(":")
        if kind != "after":
            raise ValueError(kind)
        return int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _invalid({"cursor": ["not a cursor this API gave"]}) from None


# Members


def member_doc(row: sqlite3.Row) -> dict[str, Any]:
    """A Member document."""
    return {
        "id": row["id"],
        "wallet_id": row["wallet_id"],
        "status": row["status"],
        "created_at": row["created_at"],
        "external_id": row["external_id"],
        "email": row["email"],
        "display_name": row["display_name"],
        "locale": row["locale"],
        "skills": json.loads(row["skills"]),
    }


def _profile_errors(payload: dict[str, Any], *, partial: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    name = payload.get("display_name")
    if not (partial and "display_name" not in payload) and (
        not isinstance(name, str) or not name.strip() or len(name) > 120
    ):
        errors["display_name"] = ["1 to 120 characters"]
    if "locale" in payload and payload["locale"] not in LOCALES:
        errors["locale"] = ["one of it, en"]
    skills = payload.get("skills", [])
    if not isinstance(skills, list) or len(skills) > 30:
        errors["skills"] = ["a list of at most 30 skills"]
    elif any(not isinstance(s, str) or not s or len(s) > 60 for s in skills):
        errors["skills"] = ["each skill has 1 to 60 characters"]
    return errors


def _insert_member(
    connection: sqlite3.Connection,
    client_id: str | None,
    external_id: str,
    email: str,
    display_name: str,
    locale: str,
    skills: list[str],
    credit_limit: int,
) -> sqlite3.Row:
    member_id, wallet_id, created = _new_id("m"), _new_id("w"), now_iso()
    connection.execute(
        "INSERT INTO wallets (id, member_id, balance, credit_limit, updated_at) "
        "VALUES (?, ?, 0, ?, ?)",
        (wallet_id, member_id, credit_limit, created),
    )
    connection.execute(
        "INSERT INTO members (id, client_id, external_id, email, email_key, display_name, locale, "
        "skills, status, wallet_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
        (
            member_id,
            client_id,
            external_id,
            email,
            email.strip().casefold(),
            display_name,
            locale,
            json.dumps(skills),
            wallet_id,
            created,
        ),
    )
    return _one(connection, "SELECT * FROM members WHERE id = ?", member_id)


def register_member(
    connection: sqlite3.Connection, client_id: str, payload: Any, credit_limit: int
) -> dict[str, Any]:
    """Register a member for the partner: 409 member_exists if the email has an account."""
    if not isinstance(payload, dict):
        raise _invalid({"body": ["a JSON object"]})
    errors = _profile_errors(payload, partial=False)
    if not isinstance(payload.get("external_id"), str) or not payload["external_id"]:
        errors["external_id"] = ["required"]
    email = payload.get("email")
    if not isinstance(email, str) or not EMAIL.match(email):
        errors["email"] = ["an e-mail address"]
        email = ""
    if errors:
        raise _invalid(errors)
    existing = connection.execute(
        "SELECT id, client_id FROM members WHERE email_key = ?", (email.strip().casefold(),)
    ).fetchone()
    if existing is not None:
        # The id is the partner's to know only if the partner registered that member itself.
        extra = {"existing_id": existing["id"]} if existing["client_id"] == client_id else {}
        raise SandboxProblem(
            409,
            "member_exists",
            "this e-mail already has an account; link it through /oauth/authorize",
            **extra,
        )
    same_id = connection.execute(
        "SELECT id FROM members WHERE client_id = ? AND external_id = ? AND status != 'erased'",
        (client_id, payload["external_id"]),
    ).fetchone()
    if same_id is not None:
        raise SandboxProblem(
            409, "external_id_exists", "this external_id is registered", existing_id=same_id["id"]
        )
    row = _insert_member(
        connection,
        client_id,
        payload["external_id"],
        email,
        payload["display_name"],
        payload.get("locale", "it"),
        list(payload.get("skills", [])),
        credit_limit,
    )
    return member_doc(row)


def create_native_member(
    connection: sqlite3.Connection, email: str, display_name: str, credit_limit: int
) -> sqlite3.Row:
    """A member who joined the timebank directly (not through a partner)."""
    return _insert_member(connection, None, "", email, display_name, "it", [], credit_limit)


def _visible_member(connection: sqlite3.Connection, client_id: str, member_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = connection.execute(
        "SELECT * FROM members WHERE id = :member AND (client_id = :client OR id IN "
        "(SELECT member_id FROM links WHERE client_id = :client))",
        {"member": member_id, "client": client_id},
    ).fetchone()
    if row is None:
        raise SandboxProblem(404, "not_found", f"no member {member_id} for this partner")
    return row


def get_member(connection: sqlite3.Connection, client_id: str, member_id: str) -> dict[str, Any]:
    """A member the partner can see."""
    return member_doc(_visible_member(connection, client_id, member_id))


def _member_watchers(connection: sqlite3.Connection, member: sqlite3.Row) -> list[str]:
    linked = connection.execute(
        "SELECT client_id FROM links WHERE member_id = ?", (member["id"],)
    ).fetchall()
    watchers = {row["client_id"] for row in linked}
    if member["client_id"]:
        watchers.add(member["client_id"])
    return sorted(watchers)


def update_member(
    connection: sqlite3.Connection, client_id: str, member_id: str, payload: Any, faults: Faults
) -> dict[str, Any]:
    """Change a member's display name, locale or skills."""
    member = _visible_member(connection, client_id, member_id)
    if member["status"] == "erased":
        raise SandboxProblem(404, "member_erased", f"member {member_id} was erased")
    if not isinstance(payload, dict):
        raise _invalid({"body": ["a JSON object"]})
    errors = _profile_errors(payload, partial=True)
    if errors:
        raise _invalid(errors)
    changes = {k: payload[k] for k in ("display_name", "locale") if k in payload}
    if "skills" in payload:
        changes["skills"] = json.dumps(payload["skills"])
    for column, value in changes.items():
        connection.execute(
            f"UPDATE members SET {column} = ? WHERE id = ?",  # noqa: S608 - column from a fixed list
            (value, member_id),
        )
    row = connection.execute("SELECT * FROM members WHERE id = ?", (member_id,)).fetchone()
    document = member_doc(row)
    enqueue_event(
        connection, _member_watchers(connection, row), "member.updated", document, now_iso(), faults
    )
    return document


def erase_member(
    connection: sqlite3.Connection, client_id: str, member_id: str, faults: Faults
) -> None:
    """Erase a member the partner registered (a linked one is only unlinked).

    The wallet and its history stay, anonymised; the e-mail address becomes free again.
    Unlinking also revokes the member's tokens the partner holds.
    """
    member = _visible_member(connection, client_id, member_id)
    if member["client_id"] != client_id:
        connection.execute(
            "DELETE FROM links WHERE client_id = ? AND member_id = ?", (client_id, member_id)
        )
        connection.execute(
            "UPDATE tokens SET revoked = 1 WHERE client_id = ? AND member_id = ?",
            (client_id, member_id),
        )
        return
    if member["status"] == "erased":
        return
    watchers = _member_watchers(connection, member)
    connection.execute(
        "UPDATE members SET status = 'erased', email = ?, email_key = NULL, display_name = '', "
        "skills = '[]' WHERE id = ?",
        (f"erased+{member_id}@sandbox.invalid", member_id),
    )
    connection.execute("UPDATE wallets SET closed = 1 WHERE id = ?", (member["wallet_id"],))
    row = connection.execute("SELECT * FROM members WHERE id = ?", (member_id,)).fetchone()
    enqueue_event(connection, watchers, "member.erased", member_doc(row), now_iso(), faults)


def list_members(
    connection: sqlite3.Connection,
    client_id: str,
    external_id: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """The partner's registered members, oldest first, one page."""
    after = decode_cursor(cursor)
    query = "SELECT * FROM members WHERE client_id = ? AND seq > ?"
    params: list[Any] = [client_id, after]
    if external_id:
        query += " AND external_id = ?"
        params.append(external_id)
    rows = connection.execute(query + " ORDER BY seq LIMIT ?", [*params, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [member_doc(row) for row in rows],
        "next_cursor": encode_cursor(rows[-1]["seq"]) if more else None,
    }


# Wallets and transfers


def _visible_wallet(
    connection: sqlite3.Connection, client_id: str, wallet_id: str
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = connection.execute(
        f"SELECT * FROM wallets WHERE id = :wallet AND id IN ({VISIBLE_WALLETS})",  # noqa: S608
        {"wallet": wallet_id, "client": client_id},
    ).fetchone()
    return row


def wallet_doc(connection: sqlite3.Connection, client_id: str, wallet_id: str) -> dict[str, Any]:
    """A Wallet document of a wallet the partner can see."""
    row = _visible_wallet(connection, client_id, wallet_id)
    if row is None:
        raise SandboxProblem(404, "not_found", f"no wallet {wallet_id} for this partner")
    return {
        "id": row["id"],
        "member_id": row["member_id"],
        "balance_minutes": row["balance"],
        "credit_limit_minutes": row["credit_limit"],
        "updated_at": row["updated_at"],
    }


def transfer_doc(row: sqlite3.Row) -> dict[str, Any]:
    """A Transfer document."""
    document = {
        "id": row["id"],
        "status": row["status"],
        "reversal_of": row["reversal_of"],
        "created_at": row["created_at"],
        "payer_wallet_id": row["payer_wallet_id"],
        "payee_wallet_id": row["payee_wallet_id"],
        "minutes": row["minutes"],
        "description": row["description"],
        "external_reference": row["external_reference"],
    }
    if row["occurred_at"]:
        document["occurred_at"] = row["occurred_at"]
    return document


def _wallet_watchers(connection: sqlite3.Connection, wallet_ids: list[str]) -> list[str]:
    marks = ", ".join("?" for _ in wallet_ids)
    rows = connection.execute(
        f"SELECT client_id FROM wallets WHERE id IN ({marks}) AND client_id IS NOT NULL "  # noqa: S608
        f"UNION SELECT client_id FROM members WHERE wallet_id IN ({marks}) "
        "AND client_id IS NOT NULL "
        "UNION SELECT l.client_id FROM links l JOIN members m ON m.id = l.member_id "
        f"WHERE m.wallet_id IN ({marks})",
        [*wallet_ids, *wallet_ids, *wallet_ids],
    ).fetchall()
    return sorted(row["client_id"] for row in rows)


def record_transfer(
    connection: sqlite3.Connection,
    client_id: str | None,
    payer: sqlite3.Row,
    payee: sqlite3.Row,
    minutes: int,
    description: str,
    reference: str,
    occurred_at: str | None = None,
    *,
    reversal_of: str | None = None,
) -> sqlite3.Row:
    """Move ``minutes`` from payer to payee and record the transfer (checks done by callers)."""
    transfer_id, created = _new_id("t"), now_iso()
    connection.execute(
        "UPDATE wallets SET balance = balance - ?, updated_at = ? WHERE id = ?",
        (minutes, created, payer["id"]),
    )
    connection.execute(
        "UPDATE wallets SET balance = balance + ?, updated_at = ? WHERE id = ?",
        (minutes, created, payee["id"]),
    )
    connection.execute(
        "INSERT INTO transfers (id, client_id, payer_wallet_id, payee_wallet_id, minutes, "
        "description, external_reference, occurred_at, status, reversal_of, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?)",
        (
            transfer_id,
            client_id,
            payer["id"],
            payee["id"],
            minutes,
            description,
            reference,
            occurred_at,
            reversal_of,
            created,
        ),
    )
    return _one(connection, "SELECT * FROM transfers WHERE id = ?", transfer_id)


def _transfer_errors(payload: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field in ("payer_wallet_id", "payee_wallet_id", "external_reference"):
        value = payload.get(field)
        if not isinstance(value, str) or not value or len(value) > 255:
            errors[field] = ["required, 1 to 255 characters"]
    minutes = payload.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        errors["minutes"] = [f"a whole number from 1 to {MAX_MINUTES}"]
    description = payload.get("description")
    if not isinstance(description, str) or len(description) > 500:
        errors["description"] = ["at most 500 characters"]
    occurred = payload.get("occurred_at")
    if occurred is not None:
        try:
            if not isinstance(occurred, str) or datetime.fromisoformat(occurred).tzinfo is None:
                raise ValueError(occurred)
        except ValueError:
            errors["occurred_at"] = ["an RFC 3339 date-time with a time zone"]
    if not errors and payload["payer_wallet_id"] == payload["payee_wallet_id"]:
        errors["payee_wallet_id"] = ["differs from the payer's"]
    return errors


def create_transfer(
    connection: sqlite3.Connection, client_id: str, payload: Any, faults: Faults
) -> dict[str, Any]:
    """Move minutes between two wallets the partner can see, within the payer's credit."""
    if not isinstance(payload, dict):
        raise _invalid({"body": ["a JSON object"]})
    errors = _transfer_errors(payload)
    if errors:
        raise _invalid(errors)
    duplicate = connection.execute(
        "SELECT id FROM transfers WHERE client_id = ? AND external_reference = ?",
        (client_id, payload["external_reference"]),
    ).fetchone()
    if duplicate is not None:
        raise SandboxProblem(
            409,
            "duplicate_reference",
            "this external_reference was used already",
            existing_id=duplicate["id"],
        )
    payer = _visible_wallet(connection, client_id, payload["payer_wallet_id"])
    payee = _visible_wallet(connection, client_id, payload["payee_wallet_id"])
    unknown = {
        field: ["no such wallet for this partner"]
        for field, wallet in (("payer_wallet_id", payer), ("payee_wallet_id", payee))
        if wallet is None
    }
    if unknown or payer is None or payee is None:
        raise _invalid(unknown)
    if payer["closed"] or payee["closed"]:
        raise SandboxProblem(422, "wallet_closed", "a wallet of this transfer is closed")
    minutes = payload["minutes"]
    if payer["balance"] - minutes < -payer["credit_limit"]:
        raise SandboxProblem(
            422,
            "insufficient_balance",
            f"the payer has {payer['balance']} minutes and a credit limit of "
            f"{payer['credit_limit']}",
        )
    row = record_transfer(
        connection,
        client_id,
        payer,
        payee,
        minutes,
        payload["description"],
        payload["external_reference"],
        payload.get("occurred_at"),
    )
    document = transfer_doc(row)
    watchers = _wallet_watchers(connection, [payer["id"], payee["id"]])
    enqueue_event(connection, watchers, "transfer.completed", document, row["created_at"], faults)
    return document


def reverse_transfer(
    connection: sqlite3.Connection, client_id: str, transfer_id: str, faults: Faults
) -> dict[str, Any]:
    """Reverse a completed transfer with an opposite one; 409 if it was reversed already."""
    original = connection.execute(
        f"SELECT * FROM transfers WHERE id = :transfer AND (payer_wallet_id IN ({VISIBLE_WALLETS}) "  # noqa: S608
        f"OR payee_wallet_id IN ({VISIBLE_WALLETS}))",
        {"transfer": transfer_id, "client": client_id},
    ).fetchone()
    if original is None:
        raise SandboxProblem(404, "not_found", f"no transfer {transfer_id} for this partner")
    if original["status"] == "reversed":
        raise SandboxProblem(
            409,
            "already_reversed",
            f"transfer {transfer_id} was reversed already",
            existing_id=original["reversed_by"],
        )
    if original["reversal_of"]:
        raise _invalid({"transfer_id": ["a reversal cannot itself be reversed"]})
    payer = connection.execute(
        "SELECT * FROM wallets WHERE id = ?", (original["payee_wallet_id"],)
    ).fetchone()
    payee = connection.execute(
        "SELECT * FROM wallets WHERE id = ?", (original["payer_wallet_id"],)
    ).fetchone()
    row = record_transfer(
        connection,
        client_id,
        payer,
        payee,
        original["minutes"],
        f"Reversal of {original['description']}".strip(),
        f"reversal-of-{original['id']}",
        reversal_of=original["id"],
    )
    connection.execute(
        "UPDATE transfers SET status = 'reversed', reversed_by = ? WHERE id = ?",
        (row["id"], original["id"]),
    )
    document = transfer_doc(row)
    watchers = _wallet_watchers(connection, [payer["id"], payee["id"]])
    enqueue_event(connection, watchers, "transfer.reversed", document, row["created_at"], faults)
    return document


def list_transfers(
    connection: sqlite3.Connection,
    client_id: str,
    wallet_id: str | None,
    external_reference: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Transfers touching the partner's wallets, oldest first, one page."""
    after = decode_cursor(cursor)
    query = (
        f"SELECT * FROM transfers WHERE seq > :after AND (payer_wallet_id IN ({VISIBLE_WALLETS}) "  # noqa: S608
        f"OR payee_wallet_id IN ({VISIBLE_WALLETS}))"
    )
    params: dict[str, Any] = {"after": after, "client": client_id, "limit": limit + 1}
    if wallet_id:
        query += " AND (payer_wallet_id = :wallet OR payee_wallet_id = :wallet)"
        params["wallet"] = wallet_id
    if external_reference:
        query += " AND external_reference = :reference"
        params["reference"] = external_reference
    rows = connection.execute(query + " ORDER BY seq LIMIT :limit", params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [transfer_doc(row) for row in rows],
        "next_cursor": encode_cursor(rows[-1]["seq"]) if more else None,
    }
