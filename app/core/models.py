"""The kernel's tables: the audit trail (found by `discover("models")` like every package's)."""

from app.core.audit import AuditEntry

__all__ = ["AuditEntry"]
