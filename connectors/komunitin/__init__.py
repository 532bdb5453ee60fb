"""Komunitin through its accounting API (``komunitin-accounting-openapi.json``)."""

from connectors.komunitin.connector import KomunitinConnector

__all__ = ["KomunitinConnector"]
