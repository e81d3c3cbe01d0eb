"""Console pages of money beyond one customer (DESIGN §5, §14): payments, the refund
queue and voucher batches.

Sending a refund to Stripe runs in its own units of work
(`send_refund_now`): the view is marked `own_units_of_work`, so its request
session only reads while Stripe is called.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core.clock import utcnow
from app.core.errors import DomainError
from app.payments import checkout, queries, vouchers
from app.payments.models import PAYMENT_METHODS, PAYMENT_STATUSES, REFUND_STATUSES, Refund
from app.payments.refunds import mark_refund_paid_offline, retry_refund
from app.payments.services import list_payments
from app.payments.stripe_gateway import StripeGateway
from app.web import flash_refusal, label
from app.web.auth import staff_required
from app.web.console import bp
from app.web.console.common import PER_PAGE, page_number, post_form
from app.web.context import current_actor, database, db_session, own_units_of_work, settings
from app.web.forms import ActionForm, PaidByHandForm, VoucherBatchForm, money_field

VOUCHERS_PER_PAGE = 200


# The refund queue by default: refunds someone or something still has to act on.
ACTION_STATUSES = ("pending", "processing", "failed")


def _customer_refs(ids: set[int]) -> dict[int, str]:
    return queries.customer_refs(db_session(), ids)


@bp.route("/payments")
@staff_required("ledger.view")
def payments_list() -> Any:
    method = request.args.get("method") or None
    status = request.args.get("status") or None
    method = method if method in PAYMENT_METHODS else None
    status = status if status in PAYMENT_STATUSES else None
    page = page_number()
    rows, total = list_payments(
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
    page = page_number()
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
        retry_refund(db_session(), refund_id=refund_id, actor=current_actor(), now=utcnow())
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
        mark_refund_paid_offline(
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

    return post_form(form, act=create, refused=lambda: _render_batches(form, 422), fallback="name")


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
    page = page_number()
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
    return redirect(url_for("console.voucher_batch", batch_id=batch_id, page=page_number()))
