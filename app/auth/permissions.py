"""Roles and what each may do.

Every console route and API operation names one permission; a user or API
key may use it when its role is listed here. Adding a capability means
adding a permission here, so the route × role test covers it.
"""

from __future__ import annotations

from app.core.errors import N_

ROLES: tuple[str, ...] = ("admin", "care", "finance", "wholesale", "auditor")

# Shown to people; the catalogs translate them.
ROLE_LABELS: dict[str, str] = {
    "admin": N_("admin"),
    "care": N_("care"),
    "finance": N_("finance"),
    "wholesale": N_("wholesale"),
    "auditor": N_("auditor"),
}

ALL = frozenset(ROLES)

PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": ALL,
    # The dashboard's money figures: revenue, wholesale cost, margin, ARPU, liability.
    "dashboard.money": frozenset({"admin", "finance", "auditor"}),
    "staff.view": frozenset({"admin", "auditor"}),
    "staff.manage": frozenset({"admin"}),
    "api_keys.manage": frozenset({"admin"}),
    "audit.view": frozenset({"admin", "auditor"}),
    "subscribers.view": frozenset({"admin", "care", "auditor"}),
    # Recording or correcting a customer's real-name details (care takes them by phone).
    "subscribers.manage": frozenset({"admin", "care"}),
    # Seeing one clear ID number, with a reason, audited (everyone else sees it masked).
    "pii.reveal": frozenset({"admin"}),
    "numbers.view": frozenset({"admin", "wholesale", "care", "auditor"}),
    "numbers.manage": frozenset({"admin", "wholesale"}),
    "wholesale.view": frozenset({"admin", "wholesale", "finance", "auditor"}),
    "wholesale.manage": frozenset({"admin", "wholesale"}),
    "plans.view": frozenset({"admin", "wholesale", "finance", "care", "auditor"}),
    "plans.manage": frozenset({"admin", "wholesale"}),
    # Money: balances and ledger history (care answers questions about them),
    # moving money (finance), redeeming a customer's voucher for them (care too).
    "ledger.view": frozenset({"admin", "finance", "care", "auditor"}),
    "payments.manage": frozenset({"admin", "finance"}),
    # Store orders: who bought what (care and finance answer questions about
    # them); recording cash paid at a store for an order is payments.manage.
    "orders.view": frozenset({"admin", "finance", "care", "auditor"}),
    "vouchers.redeem": frozenset({"admin", "finance", "care"}),
    # Lines: suspend, resume, terminate (care acts on a customer's request).
    "lines.manage": frozenset({"admin", "care"}),
    # The provisioning outbox: what was sent to the hosts, and retrying dead letters.
    "provisioning.view": frozenset({"admin", "care", "auditor"}),
    "provisioning.manage": frozenset({"admin", "care"}),
    # The notification outbox (e-mail, SMS): what was sent, and retrying dead letters.
    "notifications.view": frozenset({"admin", "care", "auditor"}),
    "notifications.manage": frozenset({"admin", "care"}),
    # Usage files from the hosts: imports, rejects and daily series (read), importing
    # files and reprocessing rejects (wholesale operations).
    "usage.view": frozenset({"admin", "wholesale", "finance", "auditor"}),
    "usage.manage": frozenset({"admin", "wholesale"}),
    # Monthly settlement with the hosts: runs, files and disputes (read); exporting,
    # reconciling an invoice and resolving a dispute (finance settles the money too).
    "settlement.view": frozenset({"admin", "wholesale", "finance", "auditor"}),
    "settlement.manage": frozenset({"admin", "wholesale", "finance"}),
    # Customer service tickets: the queue, conversations (internal notes too) and the
    # 360° view (read); answering, assigning, changing status, regulator escalations
    # (care's work). Finance and wholesale have no access: a ticket holds a customer's
    # own words and personal details, and what reaches them from tickets — settlement
    # disputes — they already resolve on the settlement pages.
    "tickets.view": frozenset({"admin", "care", "auditor"}),
    "tickets.manage": frozenset({"admin", "care"}),
    # The SLA targets table (category × priority → minutes); care and auditors read it.
    "sla_targets.manage": frozenset({"admin"}),
    # The market exit (DESIGN §12): its state, figures and files (read; a handover
    # file holds clear ID numbers and also needs pii.reveal); planning, announcing,
    # recording a choice given by phone, executing and cancelling it (admin only).
    "exit.view": frozenset({"admin", "auditor"}),
    "exit.manage": frozenset({"admin"}),
    # Fraud and anomaly alerts: the list and the rules' settings (read); acknowledging,
    # dismissing, suspending the line and opening a ticket (care acts on them, as on
    # lines and tickets); the rules' thresholds and automatic suspension (admin only).
    "fraud.view": frozenset({"admin", "care", "auditor"}),
    "fraud.manage": frozenset({"admin", "care"}),
    "fraud.rules": frozenset({"admin"}),
}


def role_can(role: str, permission: str) -> bool:
    """Whether `role` holds `permission`. :raises KeyError: an unknown permission name."""
    allowed = PERMISSIONS.get(permission)
    if allowed is None:
        # A typo in a permission name must not silently open or close a route.
        raise KeyError(f"unknown permission {permission!r}")
    return role in allowed
