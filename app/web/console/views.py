"""Console entry: the navigation, signing in and out (the dashboard is in dashboard.py)."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_login import current_user

from app.core.errors import N_
from app.web.auth import login_page, sign_out
from app.web.console import bp

# Navigation: (endpoint, label, permission) — only pages that exist.
NAV: tuple[tuple[str, str, str], ...] = (
    ("console.dashboard", N_("Dashboard"), "dashboard.view"),
    ("console.numbers", N_("Numbers"), "numbers.view"),
    ("console.sims", N_("SIMs"), "numbers.view"),
    ("console.hosts", N_("Hosts"), "wholesale.view"),
    ("console.usage_imports", N_("Usage"), "usage.view"),
    ("console.settlement", N_("Settlement"), "settlement.view"),
    ("console.plan_list", N_("Plans"), "plans.view"),
    ("console.addons", N_("Add-ons"), "plans.view"),
    ("console.customers", N_("Customers"), "ledger.view"),
    ("console.tickets", N_("Tickets"), "tickets.view"),
    ("console.fraud_alerts", N_("Fraud alerts"), "fraud.view"),
    ("console.payments_list", N_("Payments"), "ledger.view"),
    ("console.store_orders", N_("Store orders"), "orders.view"),
    ("console.refunds", N_("Refunds"), "payments.manage"),
    ("console.voucher_batches", N_("Vouchers"), "payments.manage"),
    ("console.provisioning", N_("Provisioning"), "provisioning.view"),
    ("console.notifications", N_("Notifications"), "notifications.view"),
    ("console.exit_wizard", N_("Market exit"), "exit.view"),
    ("console.staff_list", N_("Staff"), "staff.view"),
    ("console.api_keys", N_("API keys"), "api_keys.manage"),
    ("console.audit", N_("Audit log"), "audit.view"),
)


@bp.app_context_processor
def console_nav() -> dict[str, Any]:
    if current_user.is_authenticated and current_user.kind == "staff":
        return {"console_nav": [(e, label) for e, label, p in NAV if current_user.can(p)]}
    return {"console_nav": []}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    return login_page(
        kind="staff", template="console/login.html", home_endpoint="console.dashboard"
    )


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sign_out()
    return redirect(url_for("console.login"))
