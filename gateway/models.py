"""Every model module, imported so that ``Base.metadata`` knows all tables (Alembic reads it)."""

from gateway.admin import models as admin_models
from gateway.api import models as api_models
from gateway.auth import models as auth_models
from gateway.callbacks import models as callback_models
from gateway.db import Base
from gateway.federation import models as federation_models
from gateway.ledger import models as ledger_models
from gateway.members import models as member_models
from gateway.sync import models as sync_models
from gateway.webhooks import models as webhook_models

# Each domain adds its model module here when it gains tables.
MODEL_MODULES = (
    admin_models,
    api_models,
    auth_models,
    callback_models,
    federation_models,
    ledger_models,
    member_models,
    sync_models,
    webhook_models,
)

metadata = Base.metadata
