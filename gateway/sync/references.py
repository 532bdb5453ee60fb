"""The reference a transfer the gateway pushed carries on a platform: its ledger transaction.

Connectors keep it where the platform lets them and give it back in ``RemoteTransfer``, so that
reconciliation tells the gateway's own transfers from those made on the platform.
"""

from __future__ import annotations

__all__ = ["transaction_of", "transfer_reference"]

PREFIX = "gw-txn-"


def transfer_reference(transaction_id: str) -> str:
    """The reference of the push of ledger transaction ``transaction_id``."""
    return f"{PREFIX}{transaction_id}"


def transaction_of(reference: str | None) -> str | None:
    """The ledger transaction a reference names, or None for a reference not ours."""
    if reference is None or not reference.startswith(PREFIX):
        return None
    return reference.removeprefix(PREFIX) or None
