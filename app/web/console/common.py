"""What the console's modules share: paging, posted forms and their refusals, the way back.

A money form posts to its own route and, when the service refuses, is
shown again with the message beside the field (`post_form`); a care form
flashes its first error and goes back to the customer's page
(`refused_form`, `back_to_customer_page`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired

from app.core import limits
from app.core.errors import DomainError
from app.web.context import db_session
from app.web.forms import attach_error, limit
from wholesale import services as wholesale

PER_PAGE = 50
# Deep enough for any real history, small enough that the offset stays an integer
# every database accepts.
MAX_PAGE = 100_000


def page_number() -> int:
    """The `page` query parameter, at least 1 and at most `MAX_PAGE` (1 when unreadable)."""
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def _refuse(form: Any, exc: DomainError, *, fallback: str) -> None:
    """Show a refusal on the form; one about no field of it goes beside `fallback`."""
    attach_error(form, exc)
    on_field = exc.field is not None and getattr(form, exc.field, None) is not None
    if not on_field and form.form_errors:
        target = getattr(form, fallback)
        target.errors = [*target.errors, form.form_errors.pop()]


def post_form(
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


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), limit(limits.NOTE)])


def _first_error(form: FlaskForm) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return _("The form expired or was sent from elsewhere. Reload the page and try again.")


def refused_form(form: FlaskForm) -> bool:
    """Whether the posted form is refused (its first error is flashed)."""
    if form.validate_on_submit():
        return False
    flash(_first_error(form), "error")
    return True


def back_to_customer_page(ref: str, anchor: str = "lines") -> Any:
    """A redirect to the customer's console page, at the panel `anchor`."""
    return redirect(url_for("console.customer", ref=ref, _anchor=anchor))


def parse_field(form: Any, name: str, parse: Any) -> int | None:
    """Parse a decimal form field, putting a refusal beside the field."""
    field = getattr(form, name)
    try:
        return int(parse(field.data or ""))
    except ValueError as exc:
        field.errors = [*field.errors, str(exc)]
        return None


def host_choices() -> list[tuple[int, str]]:
    """The hosts as choices of a select field: id, then code and name."""
    return [(h.id or 0, f"{h.code} — {h.name}") for h in wholesale.list_hosts(db_session())]
