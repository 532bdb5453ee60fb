"""Callbacks: signed events pushed by partner platforms, stored raw, processed by jobs."""
