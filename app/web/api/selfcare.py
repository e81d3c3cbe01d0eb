"""JSON API of self-care actions staff take for a subscriber (DESIGN §10, §14).

`lines.manage` buys an add-on for a line (paid from the customer's prepaid
balance, idempotent per `idempotency_key`) and switches auto-renew.
`notifications.view` lists the notification outbox (never a notice's data or
body); `notifications.manage` queues a dead letter again.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.care import outbox
from app.care.models import Notification
from app.charging.addons import buy_addon, get_addon_by_code
from app.charging.models import LinePeriod
from app.core.clock import utcnow
from app.ledger import services as ledger
from app.subscribers.services import set_auto_renew
from app.web.api import bp
from app.web.api.common import line_by_msisdn, page_args, page_out
from app.web.api.security import requires
from app.web.api.selfcare_schemas import (
    AddOnBoughtOut,
    AddOnBuyIn,
    AutoRenewIn,
    AutoRenewOut,
    NotificationOut,
    NotificationPage,
    NotificationQuery,
)
from app.web.context import current_actor, db_session


@bp.post("/lines/<msisdn>/addons")
@requires("lines.manage")
@bp.input(AddOnBuyIn, arg_name="data")
@bp.output(AddOnBoughtOut)
@bp.doc(
    responses={
        404: "No line with this number, or no add-on on sale with this code",
        409: "The line is not active, has no current period, the balance is too low, "
        "or the key was used for another purchase",
    }
)
def line_addon_buy(msisdn: str, data: dict[str, Any]) -> Any:
    """Buy a published add-on for the line's current period, paid from the balance.

    A replay with the same `idempotency_key` returns the first purchase.
    """
    session = db_session()
    line = line_by_msisdn(msisdn)
    addon = get_addon_by_code(session, data["addon"])
    assert line.id is not None and addon.id is not None
    bought = buy_addon(
        session,
        line_id=line.id,
        addon_id=addon.id,
        key=data["idempotency_key"],
        actor=current_actor(),
        now=utcnow(),
    )
    period = session.get(LinePeriod, bought.period_id)
    assert period is not None
    return {
        "id": bought.id,
        "msisdn": line.msisdn,
        "addon": addon.code,
        "data_kb": bought.data_kb,
        "price_minor": bought.price_minor,
        "currency": addon.currency,
        "entry_id": bought.entry_id,
        "period_start": period.start,
        "period_end": period.end,
        "period_data_kb": period.data_kb,
        "period_data_kb_left": period.data_kb_left,
        "balance": ledger.customer_balance(session, customer_id=line.customer_id),
        "created_at": bought.created_at,
    }


@bp.post("/lines/<msisdn>/auto-renew")
@requires("lines.manage")
@bp.input(AutoRenewIn, arg_name="data")
@bp.output(AutoRenewOut)
@bp.doc(responses={404: "No line with this number", 409: "The line has ended"})
def line_auto_renew(msisdn: str, data: dict[str, Any]) -> Any:
    """Switch the line's auto-renew on or off (audited; the same setting again changes nothing)."""
    line = line_by_msisdn(msisdn)
    assert line.id is not None
    line = set_auto_renew(
        db_session(),
        line_id=line.id,
        on=data["auto_renew"],
        actor=current_actor(),
        now=utcnow(),
    )
    return {"msisdn": line.msisdn, "status": line.status, "auto_renew": line.auto_renew}


# -- the notification outbox --------------------------------------------------------------


def _notification(row: Notification) -> dict[str, Any]:
    return {name: getattr(row, name) for name in NotificationOut().fields}


@bp.get("/notifications")
@requires("notifications.view")
@bp.input(NotificationQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(NotificationPage)
def notification_list(query: dict[str, Any]) -> Any:
    """Notices: dead letters first, then waiting, then sent; newest first in each."""
    rows, total = outbox.list_notifications(
        db_session(), status=query.get("status"), **page_args(query)
    )
    return page_out([_notification(row) for row in rows], total, query)


@bp.post("/notifications/<int:notification_id>/retry")
@requires("notifications.manage")
@bp.output(NotificationOut)
@bp.doc(responses={404: "No such notification", 409: "Only a dead letter can be retried"})
def notification_retry(notification_id: int) -> Any:
    """Queue a dead notice again, with a fresh count of attempts."""
    row = outbox.retry_dead_notification(
        db_session(), notification_id=notification_id, actor=current_actor(), now=utcnow()
    )
    return _notification(row)
