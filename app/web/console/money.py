"""Console pages for money (DESIGN §5, §14): customers and their ledgers, payments,
the refund queue and voucher batches.

Each form posts to its own route under its own permission and redirects back
when the service accepts it. A refusal (the cap, the balance, a reused
reference, bad input) re-renders the page with the message beside the field
and nothing changed: `attach_error` undoes the request's unit of work. The one
refusal that keeps what was written is a wrong voucher PIN — its failed
attempt must be committed to count towards the lockout, which
`VoucherInvalid.keeps_transaction` tells `attach_error` and the request's
commit hook.

A manual adjustment carries a random token put in the form when the page is
shown; the ledger's idempotency key is `adjust:<token>`, so submitting the
same page twice posts once.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col, select

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.ledger import services as ledger
from app.payments import checkout, queries, vouchers
from app.payments import services as payments
from app.payments.models import (
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    REFUND_STATUSES,
    Refund,
)
from app.payments.stripe_gateway import StripeGateway
from app.subscribers import services as subscribers
from app.subscribers.models import Line
from app.web import flash_refusal, format_money_for_view, label
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.care import customer_care
from app.web.context import (
    client_ip,
    current_actor,
    database,
    db_session,
    own_units_of_work,
    settings,
)
from app.web.forms import (
    ActionForm,
    AdjustmentForm,
    CustomerSearchForm,
    LineActionForm,
    OfflinePaymentForm,
    PaidByHandForm,
    StaffRefundForm,
    VoucherBatchForm,
    VoucherRedeemForm,
    attach_error,
    money_field,
)
from plans.models import Plan

PER_PAGE = 50
VOUCHERS_PER_PAGE = 200
# Deep enough for any real history, small enough that the offset stays an integer
# every database accepts.
MAX_PAGE = 100_000
# Amount columns are 32-bit integers; refuse larger amounts on the form instead
# of failing in the database.
MAX_AMOUNT_MINOR = 1_000_000_000
# The refund queue by default: refunds someone or something still has to act on.
ACTION_STATUSES = ("pending", "processing", "failed")


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def _policy() -> payments.MoneyPolicy:
    return payments.MoneyPolicy.from_settings(settings())


def _refuse(form: Any, exc: DomainError, *, fallback: str) -> None:
    """Show a refusal on the form; one about no field of it goes beside `fallback`."""
    attach_error(form, exc)
    on_field = exc.field is not None and getattr(form, exc.field, None) is not None
    if not on_field and form.form_errors:
        target = getattr(form, fallback)
        target.errors = [*target.errors, form.form_errors.pop()]


# -- customers ----------------------------------------------------------------------------


@bp.route("/customers")
@staff_required("ledger.view")
def customers() -> Any:
    session = db_session()
    form = CustomerSearchForm(request.args)
    query = (form.q.data or "") if form.validate() else ""
    found = subscribers.search_customers(session, query=query, limit=PER_PAGE)
    rows = [
        (customer, ledger.customer_balance(session, customer_id=customer.id or 0))
        for customer in found
    ]
    lines = subscribers.lines_of_customers(session, customer_ids=[c.id or 0 for c in found])
    return render_template("console/customers.html", form=form, rows=rows, query=query, lines=lines)


def _lines(customer_id: int) -> list[tuple[Line, Plan]]:
    rows = db_session().exec(
        select(Line, Plan)
        .join(Plan, col(Plan.id) == col(Line.plan_id))
        .where(Line.customer_id == customer_id)
        .order_by(col(Line.id))
    )
    return [(line, plan) for line, plan in rows]


def _render_customer(
    ref: str,
    *,
    status: int = 200,
    adjust: AdjustmentForm | None = None,
    payment: OfflinePaymentForm | None = None,
    refund: StaffRefundForm | None = None,
    voucher: VoucherRedeemForm | None = None,
) -> Any:
    session = db_session()
    customer = subscribers.get_customer_by_ref(session, ref)
    customer_id = customer.id or 0
    policy = _policy()
    page = _page()
    history, total = ledger.customer_history(
        session, customer_id=customer_id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    balance = ledger.customer_balance(session, customer_id=customer_id)
    cap = ledger.prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=policy.cap_months,
        reference_monthly_minor=policy.reference_monthly_minor,
    )
    adjust = adjust or AdjustmentForm(prefix="adjust", formdata=None)
    refund = refund or StaffRefundForm(prefix="refund", formdata=None)
    for tokened in (adjust, refund):
        if not tokened.token.data:
            tokened.token.data = secrets.token_urlsafe(24)
    customer_payments, payment_total = payments.list_payments(
        session, customer_id=customer_id, limit=PER_PAGE
    )
    customer_refunds, refund_total = payments.list_refunds(
        session, customer_id=customer_id, limit=PER_PAGE
    )
    return render_template(
        "console/customer.html",
        customer=customer,
        balance=balance,
        cap=cap,
        headroom=max(cap - balance, 0),
        lines=_lines(customer_id),
        history=history,
        history_total=total,
        page=page,
        per_page=PER_PAGE,
        payments=customer_payments,
        payment_total=payment_total,
        refunds=customer_refunds,
        refund_total=refund_total,
        adjust_form=adjust,
        payment_form=payment or OfflinePaymentForm(prefix="payment", formdata=None),
        refund_form=refund or StaffRefundForm(prefix="refund", formdata=None),
        voucher_form=voucher or VoucherRedeemForm(prefix="voucher", formdata=None),
        line_form=LineActionForm(formdata=None),
        **customer_care(customer),
    ), status


@bp.route("/customers/<ref>")
@staff_required("ledger.view")
def customer(ref: str) -> Any:
    return _render_customer(ref)


def _customer_id(ref: str) -> tuple[int, str]:
    found = subscribers.get_customer_by_ref(db_session(), ref)
    assert found.id is not None
    return found.id, found.ref


def _post_form(
    form: Any,
    *,
    act: Callable[[], Any],
    refused: Callable[[], Any],
    fallback: str,
    tokened: bool = False,
    clear: tuple[str, ...] = (),
) -> Any:
    """Handle one money form's POST: validate, act, and answer.

    `act` calls the service and returns the answer to give (a redirect, a
    download), or None when it refused the input on the form itself (an
    unreadable amount). A refusal by the service is shown on the form
    (`_refuse`, which undoes the request's unit of work unless the refusal
    keeps it). A form whose page token expired (`tokened`) is told to be
    reloaded. On any refusal the fields named in `clear` are emptied and
    `refused()` renders the page again.
    """
    if form.validate_on_submit():
        try:
            answer = act()
        except DomainError as exc:
            _refuse(form, exc, fallback=fallback)
        else:
            if answer is not None:
                return answer
    elif tokened and form.token.errors:
        form.token.data = ""
        form.form_errors.append(_("The form expired. Reload the page and try again."))
    for name in clear:
        getattr(form, name).data = ""
    return refused()


def _back_to_customer(ref: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("console.customer", ref=ref))


@bp.route("/customers/<ref>/adjust", methods=["POST"])
@staff_required("payments.manage")
def customer_adjust(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = AdjustmentForm(prefix="adjust")

    def adjust() -> Any:
        amount = money_field(form.amount, allow_negative=True)
        if amount is None:
            return None
        payments.adjust_balance(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            reason=form.reason.data or "",
            idempotency_key=f"adjust:{form.token.data}",
            actor=current_actor(),
            now=utcnow(),
            policy=_policy(),
        )
        return _back_to_customer(
            ref, _("Balance adjusted by %(amount)s.", amount=format_money_for_view(amount))
        )

    return _post_form(
        form,
        act=adjust,
        refused=lambda: _render_customer(ref, status=422, adjust=form),
        fallback="amount",
        tokened=True,
    )


@bp.route("/customers/<ref>/payments", methods=["POST"])
@staff_required("payments.manage")
def customer_payment(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = OfflinePaymentForm(prefix="payment")

    def record() -> Any:
        amount = money_field(form.amount)
        if amount is None:
            return None
        payment = payments.record_offline_payment(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            method=form.method.data or "",
            reference=form.reference.data or "",
            memo=form.memo.data or "",
            actor=current_actor(),
            now=utcnow(),
            policy=_policy(),
        )
        return _back_to_customer(
            ref,
            _(
                "Payment %(id)s of %(amount)s recorded.",
                id=payment.id,
                amount=format_money_for_view(payment.amount_minor, payment.currency),
            ),
        )

    return _post_form(
        form,
        act=record,
        refused=lambda: _render_customer(ref, status=422, payment=form),
        fallback="amount",
    )


@bp.route("/customers/<ref>/refunds", methods=["POST"])
@staff_required("payments.manage")
def customer_refund(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = StaffRefundForm(prefix="refund")

    def request_refund() -> Any:
        amount = money_field(form.amount)
        if amount is None:
            return None
        payments.request_refund(
            db_session(),
            customer_id=customer_id,
            amount_minor=amount,
            reason="staff",
            note=form.note.data or "",
            actor=current_actor(),
            now=utcnow(),
            currency=_policy().currency,
            idempotency_key=f"staff:{form.token.data}",
        )
        return _back_to_customer(
            ref, _("Refund of %(amount)s queued.", amount=format_money_for_view(amount))
        )

    return _post_form(
        form,
        act=request_refund,
        refused=lambda: _render_customer(ref, status=422, refund=form),
        fallback="amount",
        tokened=True,
    )


@bp.route("/customers/<ref>/vouchers", methods=["POST"])
@staff_required("vouchers.redeem")
def customer_voucher(ref: str) -> Any:
    customer_id, ref = _customer_id(ref)
    form = VoucherRedeemForm(prefix="voucher")

    def redeem() -> Any:
        # A wrong PIN keeps its failed attempt (committed; it counts towards
        # the lockout); any other refusal is undone.
        entry = vouchers.redeem_voucher(
            db_session(),
            customer_id=customer_id,
            serial=form.serial.data or "",
            pin=form.pin.data or "",
            ip=client_ip(),
            actor=current_actor(),
            now=utcnow(),
            policy=vouchers.VoucherPolicy(),
            **_policy().cap_kwargs(),
        )
        return _back_to_customer(ref, _("Voucher redeemed (entry %(id)s).", id=entry.id))

    return _post_form(
        form,
        act=redeem,
        refused=lambda: _render_customer(ref, status=422, voucher=form),
        fallback="pin",
        clear=("pin",),
    )


# -- payments -----------------------------------------------------------------------------


def _customer_refs(ids: set[int]) -> dict[int, str]:
    return queries.customer_refs(db_session(), ids)


@bp.route("/payments")
@staff_required("ledger.view")
def payments_list() -> Any:
    method = request.args.get("method") or None
    status = request.args.get("status") or None
    method = method if method in PAYMENT_METHODS else None
    status = status if status in PAYMENT_STATUSES else None
    page = _page()
    rows, total = payments.list_payments(
        db_session(),
        method=method,
        status=status,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    return render_template(
        "console/payments.html",
        payments=rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        method=method,
        status=status,
        methods=PAYMENT_METHODS,
        statuses=PAYMENT_STATUSES,
        refs=_customer_refs({p.customer_id for p in rows}),
    )


# -- refunds ------------------------------------------------------------------------------


@bp.route("/refunds")
@staff_required("payments.manage")
def refunds() -> Any:
    show = request.args.get("status") or "action"
    if show in REFUND_STATUSES:
        statuses: tuple[str, ...] = (show,)
    elif show == "all":
        statuses = REFUND_STATUSES
    else:
        show, statuses = "action", ACTION_STATUSES
    page = _page()
    rows, total = queries.refund_queue(
        db_session(), statuses=statuses, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "console/refunds.html",
        refunds=rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        show=show,
        statuses=REFUND_STATUSES,
        refs=_customer_refs({r.customer_id for r in rows}),
        stripe_ready=StripeGateway.from_settings(settings()) is not None,
        action_form=ActionForm(),
        paid_form=PaidByHandForm(formdata=None),
    )


def _back_to_queue() -> Any:
    show = request.form.get("show") or None
    return redirect(url_for("console.refunds", status=show))


def _refused(exc: DomainError) -> None:
    flash_refusal(exc)


@bp.route("/refunds/<int:refund_id>/send", methods=["POST"])
@own_units_of_work
@staff_required("payments.manage")
def refund_send(refund_id: int) -> Any:
    gateway = StripeGateway.from_settings(settings())
    if gateway is None:
        flash(_("Stripe is not configured, so card refunds cannot be sent."), "error")
        return _back_to_queue()
    try:
        refund = checkout.send_refund_now(database(), gateway, refund_id=refund_id, now=utcnow())
    except DomainError as exc:
        _refused(exc)
    else:
        flash(
            _("Refund %(id)s is now %(status)s.", id=refund.id, status=_refund_status(refund)),
            "success",
        )
    return _back_to_queue()


def _refund_status(refund: Refund) -> str:
    return label("refund_status", refund.status)


@bp.route("/refunds/<int:refund_id>/retry", methods=["POST"])
@staff_required("payments.manage")
def refund_retry(refund_id: int) -> Any:
    try:
        payments.retry_refund(
            db_session(), refund_id=refund_id, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        _refused(exc)
    else:
        flash(_("Refund %(id)s queued again.", id=refund_id), "success")
    return _back_to_queue()


@bp.route("/refunds/<int:refund_id>/paid", methods=["POST"])
@staff_required("payments.manage")
def refund_paid_offline(refund_id: int) -> Any:
    form = PaidByHandForm()
    if not form.validate_on_submit():
        flash(_("The note is too long."), "error")
        return _back_to_queue()
    try:
        payments.mark_refund_paid_offline(
            db_session(),
            refund_id=refund_id,
            note=form.note.data or "",
            actor=current_actor(),
            now=utcnow(),
        )
    except DomainError as exc:
        _refused(exc)
    else:
        flash(_("Refund %(id)s marked as paid by hand.", id=refund_id), "success")
    return _back_to_queue()


# -- vouchers -----------------------------------------------------------------------------


def _render_batches(form: VoucherBatchForm, status: int) -> Any:
    session = db_session()
    return render_template(
        "console/vouchers.html",
        batches=vouchers.list_batches(session),
        counts=vouchers.count_by_status(session),
        form=form,
    ), status


@bp.route("/vouchers")
@staff_required("payments.manage")
def voucher_batches() -> Any:
    return _render_batches(VoucherBatchForm(formdata=None), 200)


def _end_of_day(day: date) -> datetime:
    """The instant a voucher valid until `day` (inclusive, local time) expires."""
    zone = ZoneInfo(settings().timezone)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


@bp.route("/vouchers", methods=["POST"])
@staff_required("payments.manage")
def voucher_batch_create() -> Any:
    form = VoucherBatchForm()

    def create() -> Any:
        value = money_field(form.value)
        if value is None:
            return None
        batch, pairs = vouchers.create_voucher_batch(
            db_session(),
            name=form.name.data or "",
            value_minor=value,
            count=form.count.data or 0,
            expires_at=_end_of_day(form.expires_at.data or utcnow().date()),
            currency=settings().currency,
            actor=current_actor(),
            now=utcnow(),
        )
        if request.form.get("format") == "csv":
            return _pins_csv(batch.id or 0, pairs)
        return render_template("console/vouchers_created.html", batch=batch, pairs=pairs)

    return _post_form(form, act=create, refused=lambda: _render_batches(form, 422), fallback="name")


def _pins_csv(batch_id: int, pairs: list[tuple[str, str]]) -> Response:
    """The new batch's serials and PINs as a download; nothing of it is kept."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["serial", "pin"])
    writer.writerows(pairs)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="vouchers-{batch_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/vouchers/<int:batch_id>")
@staff_required("payments.manage")
def voucher_batch(batch_id: int) -> Any:
    session = db_session()
    batch = vouchers.get_batch(session, batch_id)
    page = _page()
    rows, total = vouchers.list_vouchers(
        session,
        batch_id=batch_id,
        limit=VOUCHERS_PER_PAGE,
        offset=(page - 1) * VOUCHERS_PER_PAGE,
    )
    return render_template(
        "console/voucher_batch.html",
        batch=batch,
        vouchers=rows,
        total=total,
        page=page,
        per_page=VOUCHERS_PER_PAGE,
        counts=vouchers.count_by_status(session).get(batch_id, {}),
        refs=_customer_refs({v.redeemed_by_customer_id for v in rows if v.redeemed_by_customer_id}),
        action_form=ActionForm(),
    )


@bp.route("/vouchers/<int:batch_id>/<serial>/void", methods=["POST"])
@staff_required("payments.manage")
def voucher_void(batch_id: int, serial: str) -> Any:
    try:
        voucher = vouchers.void_voucher(
            db_session(), serial=serial, actor=current_actor(), now=utcnow()
        )
    except DomainError as exc:
        _refused(exc)
    else:
        flash(_("Voucher %(serial)s is void.", serial=voucher.serial), "success")
    return redirect(url_for("console.voucher_batch", batch_id=batch_id, page=_page()))
