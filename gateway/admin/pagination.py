"""Keyset pagination over (time, id), newest first: stable while rows are added."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_

from gateway.problems import Problem

MAX_LIMIT = 200


def encode(created_at: datetime, row_id: str) -> str:
    """The cursor that continues after this row."""
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(stamp), str(row_id)
    except (ValueError, TypeError) as exc:
        raise Problem(400, "The cursor is not one this API gave out.", title="Bad cursor") from exc


def page(
    query: Select, time_column: Any, id_column: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of ``query`` ordered by (time, id) descending, and the next page's cursor."""
    from gateway.db import db

    if cursor:
        stamp, row_id = _decode(cursor)
        query = query.where(
            or_(time_column < stamp, and_(time_column == stamp, id_column < row_id))
        )
    ordered = query.order_by(time_column.desc(), id_column.desc()).limit(limit + 1)
    rows = list(db.session.scalars(ordered))
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return rows, None
    last = rows[-1]
    return rows, encode(getattr(last, time_column.key), getattr(last, id_column.key))
