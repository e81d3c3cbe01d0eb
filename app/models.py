"""Imports every table module so `SQLModel.metadata` is complete.

Alembic's env.py and the model/migration agreement test rely on it; a new
domain package adds its models module here.
"""

from app.auth import models as auth_models
from app.core import audit

__all__ = ["audit", "auth_models"]
