"""A local stand-in for the Stripe API, for the real `stripe` SDK to talk to.

It serves the few endpoints the platform calls — create a Checkout Session,
create and retrieve a Refund — over real HTTP, with Stripe's behaviour
where it matters to us:

* bearer-key authentication (401 without it);
* idempotency keys: the same key with the same parameters returns the
  first response; with other parameters it is a 400 `idempotency_error`;
* form-encoded nested parameters (`line_items[0][price_data][unit_amount]`);
* failures on demand (`fail_next`: 500s the SDK retries, or a dropped
  connection), and refunds that come back `pending`, `failed` or
  `succeeded` as a test asks.

`event()` builds webhook events as Stripe sends them and `sign()` signs a
payload with Stripe's scheme (`t=<unix time>,v1=<HMAC-SHA256 of "t.payload">`).
Nothing here is shipped with the application.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SECRET_KEY = "sk_test_local"
WEBHOOK_SECRET = "whsec_local_test"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into dicts; lists stay dicts by index."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


def sign(payload: bytes | str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, as Stripe computes it."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class FakeStripe:
    def __init__(self) -> None:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        with self._lock:
            self.sessions: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.idempotent: dict[str, tuple[str, Response]] = {}
            self.requests: list[tuple[str, str, dict[str, Any]]] = []
            self.fail_next = 0
            self.refund_status = "succeeded"
            self.refund_failure_reason = ""

    # -- what tests drive -------------------------------------------------------------

    def calls(self, method: str, path_prefix: str) -> list[dict[str, Any]]:
        return [p for m, path, p in self.requests if m == method and path.startswith(path_prefix)]

    def pay(self, session_id: str) -> dict[str, Any]:
        """The customer paid: the session completes with a payment intent."""
        with self._lock:
            session = self.sessions[session_id]
            session.update(
                status="complete",
                payment_status="paid",
                payment_intent=session["payment_intent"] or f"pi_test_{next(self._ids)}",
            )
            return dict(session)

    def set_refund(self, refund_id: str, status: str, failure_reason: str = "") -> dict[str, Any]:
        with self._lock:
            refund = self.refunds[refund_id]
            refund.update(status=status, failure_reason=failure_reason or None)
            return dict(refund)

    def event(self, event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
        """A webhook body as Stripe sends it."""
        body = {
            "id": event_id or f"evt_test_{next(self._ids)}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "type": event_type,
            "livemode": False,
            "data": {"object": obj},
        }
        return json.dumps(body).encode()

    # -- the HTTP side ----------------------------------------------------------------

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        return self._handle(request)(environ, start_response)

    def _handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        params = _nest(parse_qsl(request.get_data(as_text=True)))
        if request.method == "GET":
            params = _nest(list(request.args.items()))
        with self._lock:
            self.requests.append((request.method, request.path, params))
            if self.fail_next:
                self.fail_next -= 1
                return _error(500, "api_error", "Something went wrong on Stripe's end")
            key = request.headers.get("Idempotency-Key")
            fingerprint = json.dumps([request.path, params], sort_keys=True)
            if key and key in self.idempotent:
                first_fingerprint, response = self.idempotent[key]
                if first_fingerprint != fingerprint:
                    return _error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
                return response
            response = self._route(request, params)
            if key and request.method == "POST" and response.status_code < 500:
                self.idempotent[key] = (fingerprint, response)
            return response

    def _route(self, request: Request, params: dict[str, Any]) -> Response:
        path = request.path
        if request.method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(params)
        if request.method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        if request.method == "GET" and path.startswith("/v1/refunds/"):
            refund = self.refunds.get(path.rsplit("/", 1)[1])
            if refund is None:
                return _error(404, "invalid_request_error", "No such refund")
            return _json(refund)
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _create_session(self, params: dict[str, Any]) -> Response:
        try:
            item = params["line_items"]["0"]
            amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            currency = item["price_data"]["currency"]
            success_url, cancel_url = params["success_url"], params["cancel_url"]
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: line_items")
        session_id = f"cs_test_{next(self._ids)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params.get("mode", "payment"),
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata", {}),
            "payment_intent": None,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "url": f"{self.base_url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return _json(session)

    def _create_refund(self, params: dict[str, Any]) -> Response:
        intent = params.get("payment_intent")
        paid = [s for s in self.sessions.values() if s["payment_intent"] == intent]
        if not paid:
            return _error(400, "invalid_request_error", f"No such payment_intent: '{intent}'")
        amount = int(params.get("amount") or paid[0]["amount_total"])
        already = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent and r["status"] != "failed"
        )
        if already + amount > paid[0]["amount_total"]:
            return _error(
                400, "invalid_request_error", "Refund amount is greater than unrefunded amount"
            )
        refund_id = f"re_test_{next(self._ids)}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": paid[0]["currency"],
            "payment_intent": intent,
            "metadata": params.get("metadata", {}),
            "status": self.refund_status,
            "failure_reason": self.refund_failure_reason or None,
        }
        self.refunds[refund_id] = refund
        return _json(refund)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Request-Id": "req_test"},
    )


def _error(status: int, kind: str, message: str) -> Response:
    return _json({"error": {"type": kind, "message": message}}, status)
