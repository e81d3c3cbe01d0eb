"""WTForms shared by the console and the store. Labels are translatable."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH
from app.auth.permissions import ROLE_LABELS, ROLES
from app.core.errors import DomainError

ROLE_CHOICES = [SelectChoice(value=role, label=_l(ROLE_LABELS[role])) for role in ROLES]


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_LENGTH)])


class RegisterForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    display_name = StringField(_l("Name (optional)"), validators=[Length(max=200)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)]
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class StaffCreateForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    password = PasswordField(
        _l("Initial password"), validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)]
    )


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)]
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


def attach_error(form: Any, exc: DomainError) -> None:
    """Show a domain refusal beside the field it concerns, or above the form."""
    from app.web import localized

    field = getattr(form, exc.field, None) if exc.field else None
    message = localized(exc)
    if field is not None:
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)
