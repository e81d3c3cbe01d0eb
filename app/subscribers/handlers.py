"""Handlers and policies app/subscribers registers with the floors below it."""

from __future__ import annotations

from app.ledger.cap import set_cap_policy
from app.subscribers.cap import prepaid_caps

set_cap_policy(prepaid_caps)
