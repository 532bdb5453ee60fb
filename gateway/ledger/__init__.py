"""The hour ledger: double-entry, append-only, in integer minutes (see ``services``)."""
