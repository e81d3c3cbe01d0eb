"""What app/subscribers does when a floor below it announces an event, and the policies it
hands to the floors below (app/core/events.py)."""

from __future__ import annotations

from sqlmodel import Session, select

from app.auth.events import PasswordResetRequested
from app.core.events import on
from app.ledger.cap import set_cap_policy
from app.notifications.services import notify
from app.provisioning.events import ActivationDelivered
from app.subscribers import lifecycle
from app.subscribers.cap import prepaid_caps
from app.subscribers.models import Customer

set_cap_policy(prepaid_caps)


@on(ActivationDelivered)
def activate_delivered_line(session: Session, event: ActivationDelivered) -> None:
    """The host acknowledged an activation: the line becomes active if still pending."""
    lifecycle.confirm_activation(
        session, line_id=event.line_id, event_id=event.event_id, now=event.now
    )


@on(PasswordResetRequested)
def send_password_reset(session: Session, event: PasswordResetRequested) -> None:
    """Queue the reset e-mail, filed under the login's customer when it has one."""
    customer = session.exec(
        select(Customer).where(Customer.subscriber_account_id == event.account_id)
    ).first()
    notify(
        session,
        kind="password_reset",
        recipient=event.email,
        now=event.now,
        data={"reset_url": event.reset_url, "expires_minutes": event.expires_minutes},
        customer_id=customer.id if customer else None,
        account_id=event.account_id,
        locale=event.locale,
    )
