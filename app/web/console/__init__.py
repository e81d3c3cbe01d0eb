from flask import Blueprint

bp = Blueprint("console", __name__, template_folder="../../templates/console")

from app.web.console import (  # noqa: E402,F401
    customer360,
    customers,
    dashboard,
    exit,
    fraud,
    hosts,
    lines,
    notifications,
    numbers,
    orders,
    payments,
    plans,
    provisioning,
    settlement,
    sla_days,
    staff,
    ticket_actions,
    tickets,
    usage,
    views,
)
