"""TimeRepublik through the partner API contract (``timebank-partner-api.yaml``)."""

from connectors.timerepublik.connector import TimeRepublikConnector

__all__ = ["TimeRepublikConnector"]
