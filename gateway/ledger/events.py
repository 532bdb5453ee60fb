"""Signals the ledger sends inside the open DB transaction, right after the posting is flushed.

Subscribers (the sync engine's outbox writer) run in the same transaction as the posting: a row
they add commits or rolls back with it. Both are sent with ``sender=None, transaction=txn``.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

transaction_posted = _signals.signal(
    "ledger.transaction-posted", doc="A transaction (not a reversal) was posted."
)
transaction_reversed = _signals.signal(
    "ledger.transaction-reversed", doc="A reversal was posted; ``transaction`` is the reversal."
)
