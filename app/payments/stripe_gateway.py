"""The one place that talks to Stripe, through the official `stripe` SDK.

Stripe is used only when `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` are
set; `STRIPE_API_BASE` points the SDK elsewhere (tests run a local server).

* Every call that creates something at Stripe carries an idempotency key
  derived from our own row's id (`mvno-payment-<id>`,
  `mvno-refund-<id>-<attempt>`), so repeating a call after a crash gets the
  object Stripe already made instead of a second one.
* Webhooks are verified with Stripe's signature scheme (`Stripe-Signature:
  t=…,v1=HMAC-SHA256(secret, "t.payload")`, 5 minutes' tolerance) on the
  raw body before anything in it is believed.
* No call is made inside a database transaction: the caller reads what it
  needs, calls, then writes the result in a new transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe

from app.core.errors import N_
from app.payments.errors import PaymentProviderError, WebhookInvalid

log = logging.getLogger(__name__)
WEBHOOK_TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class RemoteRefund:
    id: str
    status: str  # pending | requires_action | succeeded | failed | canceled
    failure_reason: str = ""


class StripeGateway:
    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str | None = None):
        base = {"api": api_base.rstrip("/")} if api_base else None
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )
        self._webhook_secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: Any) -> StripeGateway | None:
        """The gateway when Stripe is configured, else None (vouchers and offline only)."""
        if not settings.stripe_enabled:
            return None
        return cls(
            secret_key=settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
        )

    def create_checkout_session(
        self,
        *,
        payment_id: int,
        amount_minor: int,
        currency: str,
        description: str,
        customer_ref: str,
        customer_email: str | None,
        success_url: str,
        cancel_url: str,
        locale: str | None = None,
    ) -> CheckoutSession:
        metadata = {"payment_id": str(payment_id), "customer_ref": customer_ref}
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(payment_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": description},
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if customer_email:
            params["customer_email"] = customer_email
        if locale:
            params["locale"] = locale
        session = self._call(
            self._client.v1.checkout.sessions.create,
            params,
            {"idempotency_key": f"mvno-payment-{payment_id}"},
        )
        return CheckoutSession(id=session.id, url=session.url or "")

    def create_refund(
        self, *, refund_id: int, attempt: int, payment_intent_id: str, amount_minor: int
    ) -> RemoteRefund:
        refund = self._call(
            self._client.v1.refunds.create,
            {
                "payment_intent": payment_intent_id,
                "amount": amount_minor,
                "metadata": {"refund_id": str(refund_id)},
            },
            {"idempotency_key": f"mvno-refund-{refund_id}-{attempt}"},
        )
        return _remote_refund(refund)

    def retrieve_refund(self, stripe_refund_id: str) -> RemoteRefund:
        return _remote_refund(self._call(self._client.v1.refunds.retrieve, stripe_refund_id))

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event in `payload` once its signature checks out.

        :raises WebhookInvalid: missing, wrong or stale signature, or not an event.
        """
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature or "",
                self._webhook_secret,
                tolerance=WEBHOOK_TOLERANCE_SECONDS,
            )
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise WebhookInvalid(N_("The webhook signature does not verify.")) from exc
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("id"), str)
            or not isinstance(event.get("type"), str)
            or not isinstance(event.get("data"), dict)
            or not isinstance(event["data"].get("object"), dict)
        ):
            raise WebhookInvalid(N_("The webhook body is not a Stripe event."))
        return event

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except stripe.StripeError as exc:
            log.warning("stripe call failed: %s", exc)
            raise PaymentProviderError(
                N_("The card payment service is not available right now; please try again.")
            ) from exc


def _remote_refund(refund: Any) -> RemoteRefund:
    return RemoteRefund(
        id=refund.id,
        status=refund.status or "pending",
        failure_reason=getattr(refund, "failure_reason", None) or "",
    )
