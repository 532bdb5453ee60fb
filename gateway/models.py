"""Imports every model module so that ``Base.metadata`` knows all tables (Alembic reads it)."""

from gateway.db import Base

# Each domain adds one import line here when it gains tables.

metadata = Base.metadata
