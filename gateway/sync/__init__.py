"""The sync engine: outbox rows become RQ jobs that drive connectors, with retries and reports."""
