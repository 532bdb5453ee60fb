"""Every model module, imported so that ``Base.metadata`` knows all tables (Alembic reads it)."""

from gateway.auth import models as auth_models
from gateway.db import Base
from gateway.federation import models as federation_models
from gateway.members import models as member_models
from gateway.sync import models as sync_models

# Each domain adds its model module here when it gains tables.
MODEL_MODULES = (auth_models, federation_models, member_models, sync_models)

metadata = Base.metadata
