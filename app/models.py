"""Imports every table module so `SQLModel.metadata` is complete.

Alembic's env.py and the model/migration agreement test rely on it; a new
domain package adds its models module here.
"""

from app.auth import models as auth_models
from app.care import models as care_models
from app.charging import models as charging_models
from app.core import audit
from app.ledger import models as ledger_models
from app.payments import models as payments_models
from app.provisioning import models as provisioning_models
from app.subscribers import models as subscribers_models
from numbering import models as numbering_models
from plans import models as plans_models
from wholesale import models as wholesale_models

__all__ = [
    "audit",
    "auth_models",
    "care_models",
    "charging_models",
    "ledger_models",
    "numbering_models",
    "payments_models",
    "plans_models",
    "provisioning_models",
    "subscribers_models",
    "wholesale_models",
]
