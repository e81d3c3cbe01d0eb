"""WTForms shared by the console and the store. Labels are translatable."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH
from app.auth.permissions import ROLE_LABELS, ROLES
from app.core import limits
from app.core.errors import DomainError
from app.core.money import MAX_AMOUNT_MINOR, parse_minor
from plans.terms import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH


def limit(max_length: int, *, min_length: int = -1) -> Length:
    """A length check whose message says the limit in the viewer's language.

    WTForms also renders `max_length` as the input's `maxlength` attribute.
    The services check the same limits (app/core/limits.py); this one says
    so beside the field before the service is asked.
    """
    if min_length > 0:
        return Length(
            min=min_length,
            max=max_length,
            message=_l("Use %(min)d to %(max)d characters (this has %(length)d)."),
        )
    return Length(
        max=max_length, message=_l("Use at most %(max)d characters (this has %(length)d).")
    )


ROLE_CHOICES = [SelectChoice(value=role, label=_l(ROLE_LABELS[role])) for role in ROLES]


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), limit(limits.EMAIL)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), limit(MAX_LENGTH)])


class RegisterForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), limit(limits.EMAIL)])
    display_name = StringField(_l("Name (optional)"), validators=[limit(limits.PERSON_NAME)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), limit(MAX_LENGTH, min_length=MIN_LENGTH)]
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class StaffCreateForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), limit(limits.EMAIL)])
    name = StringField(_l("Name"), validators=[limit(limits.PERSON_NAME)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    password = PasswordField(
        _l("Initial password"),
        validators=[DataRequired(), limit(MAX_LENGTH, min_length=MIN_LENGTH)],
    )


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), limit(MAX_LENGTH, min_length=MIN_LENGTH)]
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), limit(limits.LABEL)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


def money_field(field: Any, *, allow_negative: bool = False) -> int | None:
    """A form field's amount ("50.00") in minor units, or None with a message beside it.

    Zero passes: the service refuses it with its own message.
    """
    from app.web import format_money_for_view

    try:
        value: int | None = parse_minor(field.data or "", allow_negative=allow_negative)
    except ValueError:
        value = None
    if value is None or abs(value) > MAX_AMOUNT_MINOR:
        field.errors = [
            *field.errors,
            _(
                "Give an amount like %(example)s, at most %(max)s.",
                example="5.00 or -5.00" if allow_negative else "50.00",
                max=format_money_for_view(MAX_AMOUNT_MINOR),
            ),
        ]
        return None
    return value


def attach_error(form: Any, exc: DomainError) -> None:
    """Show a domain refusal beside the field it concerns, or above the form.

    Also undoes the request's unit of work (see `undo_refused`), so nothing
    the refused service flushed is committed.
    """
    from app.web import localized, undo_refused

    undo_refused(exc)
    field = getattr(form, exc.field, None) if exc.field else None
    message = localized(exc)
    if field is not None:
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)


# -- supply side ------------------------------------------------------------------------


class NumberBlockForm(FlaskForm):
    host_id = SelectField(_l("Host"), coerce=int)
    first = StringField(_l("First number"), validators=[DataRequired(), limit(16)])
    last = StringField(_l("Last number"), validators=[DataRequired(), limit(16)])


class GoldenTierForm(FlaskForm):
    surcharge = StringField(_l("Surcharge"), validators=[DataRequired(), limit(12)])
    enabled = BooleanField(_l("In use"))


class NumberSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    pattern = StringField(_l("Digits"), validators=[limit(11)])
    mode = SelectField(
        _l("Match"),
        choices=[
            SelectChoice(value="ends_with", label=_l("ends with")),
            SelectChoice(value="contains", label=_l("contains")),
        ],
    )
    tier = SelectField(_l("Tier"), default="")


class SimImportForm(FlaskForm):
    host_id = SelectField(_l("Host"), coerce=int)
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class HostForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), limit(20)])
    name = StringField(_l("Name"), validators=[DataRequired(), limit(limits.LABEL)])
    currency = StringField(_l("Currency"), default="CNY", validators=[limit(3)])
    timezone = StringField(_l("Time zone"), default="Asia/Shanghai", validators=[limit(64)])
    provisioning = SelectField(
        _l("Provisioning"),
        choices=[SelectChoice(value="log", label="log"), SelectChoice(value="http", label="http")],
    )
    provisioning_url = StringField(_l("Provisioning URL"), validators=[limit(500)])


PRICE_FIELDS = ("data_per_mb", "voice_per_min", "sms_per_msg", "line_per_month", "number_per_month")


class RateCardForm(FlaskForm):
    effective_from = DateField(_l("Effective from"), validators=[DataRequired()])
    data_per_mb = StringField(_l("Data per MB"), validators=[DataRequired()])
    voice_per_min = StringField(_l("Voice per minute"), validators=[DataRequired()])
    sms_per_msg = StringField(_l("SMS per message"), validators=[DataRequired()])
    line_per_month = StringField(_l("Line per month"), validators=[DataRequired()])
    number_per_month = StringField(_l("Number per month"), validators=[DataRequired()])
    retail_data_per_mb = StringField(_l("Data per MB"), validators=[DataRequired()])
    retail_voice_per_min = StringField(_l("Voice per minute"), validators=[DataRequired()])
    retail_sms_per_msg = StringField(_l("SMS per message"), validators=[DataRequired()])
    retail_line_per_month = StringField(_l("Line per month"), validators=[DataRequired()])
    retail_number_per_month = StringField(_l("Number per month"), validators=[DataRequired()])


class PlanForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), limit(40)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[limit(MAX_NAME_LENGTH)])
    name_en = StringField(_l("Name (English)"), validators=[limit(MAX_NAME_LENGTH)])
    description_zh = TextAreaField(
        _l("Description (Chinese)"), validators=[limit(MAX_DESCRIPTION_LENGTH)]
    )
    description_en = TextAreaField(
        _l("Description (English)"), validators=[limit(MAX_DESCRIPTION_LENGTH)]
    )
    host_id = SelectField(_l("Host"), coerce=int)
    price = StringField(_l("Price"), validators=[DataRequired(), limit(12)])
    validity_days = IntegerField(_l("Validity (days)"), default=30, validators=[InputRequired()])
    data_mb = IntegerField(_l("Data (MB)"), default=0, validators=[InputRequired()])
    voice_min = IntegerField(_l("Voice (minutes)"), default=0, validators=[InputRequired()])
    sms = IntegerField(_l("SMS"), default=0, validators=[InputRequired()])
    overage_data_per_mb = StringField(_l("Overage per MB"), default="0.00")
    overage_voice_per_min = StringField(_l("Overage per minute"), default="0.00")
    overage_sms = StringField(_l("Overage per SMS"), default="0.00")
    voice_increment_s = IntegerField(
        _l("Voice increment (seconds)"), default=60, validators=[InputRequired()]
    )
    auto_renew_default = BooleanField(_l("Auto-renew by default"), default=True)


class PublishForm(FlaskForm):
    override_negative_margin = BooleanField(_l("Publish even with a negative margin"))
    reason = StringField(_l("Reason for the override"), validators=[limit(limits.NOTE)])


class AddOnForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), limit(40)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[limit(MAX_NAME_LENGTH)])
    name_en = StringField(_l("Name (English)"), validators=[limit(MAX_NAME_LENGTH)])
    price = StringField(_l("Price"), validators=[DataRequired(), limit(12)])
    data_mb = IntegerField(_l("Data (MB)"), validators=[InputRequired()])


# -- money --------------------------------------------------------------------------------


class CustomerSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        _l("Customer ref, number, ICCID, e-mail or name"), validators=[limit(limits.EMAIL)]
    )


class AdjustmentForm(FlaskForm):
    amount = StringField(
        _l("Amount (negative to take money off)"), validators=[DataRequired(), limit(16)]
    )
    reason = TextAreaField(_l("Reason"), validators=[limit(limits.NOTE)])
    # A random token put in the page when the form is shown: a second submit
    # of the same page posts nothing new (the ledger key is `adjust:<token>`).
    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class OfflinePaymentForm(FlaskForm):
    method = SelectField(
        _l("Method"),
        choices=[
            SelectChoice(value="cash", label=_l("cash")),
            SelectChoice(value="bank_transfer", label=_l("bank transfer")),
        ],
    )
    amount = StringField(_l("Amount"), validators=[DataRequired(), limit(16)])
    reference = StringField(
        _l("Receipt or bank reference"), validators=[DataRequired(), limit(limits.REFERENCE)]
    )
    memo = StringField(_l("Memo"), validators=[limit(limits.MEMO)])


class StaffRefundForm(FlaskForm):
    amount = StringField(_l("Amount"), validators=[DataRequired(), limit(16)])
    note = TextAreaField(_l("Note"), validators=[limit(limits.NOTE)])
    # As for adjustments: a second submit of the same page refunds nothing more.
    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class VoucherRedeemForm(FlaskForm):
    serial = StringField(_l("Serial"), validators=[DataRequired(), limit(limits.REFERENCE)])
    pin = StringField(_l("PIN"), validators=[DataRequired(), limit(40)])


class LineActionForm(FlaskForm):
    """Suspend, resume or terminate a line: the reason is recorded in the audit log."""

    reason = StringField(_l("Reason"), validators=[DataRequired(), limit(limits.NOTE)])


class PaidByHandForm(FlaskForm):
    note = StringField(_l("How it was paid"), validators=[limit(limits.NOTE)])


class VoucherBatchForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), limit(limits.LABEL)])
    value = StringField(_l("Value"), validators=[DataRequired(), limit(16)])
    count = IntegerField(_l("Number of vouchers"), default=100, validators=[InputRequired()])
    expires_at = DateField(_l("Valid until (inclusive)"), validators=[DataRequired()])


# -- store: self-care money ---------------------------------------------------------------


class CardTopUpForm(FlaskForm):
    amount = StringField(_l("Amount"), validators=[DataRequired(), limit(16)])


class StoreVoucherForm(FlaskForm):
    serial = StringField(_l("Voucher serial"), validators=[DataRequired(), limit(limits.REFERENCE)])
    pin = StringField(_l("PIN"), validators=[DataRequired(), limit(40)])
