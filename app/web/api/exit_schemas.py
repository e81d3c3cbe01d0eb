"""API schemas of the market exit: its state, what executing it would do or did, its files.

Money in minor units; totals over every currency beside the figures per currency.
"""

from __future__ import annotations

from datetime import date

from apiflask import Schema
from apiflask.fields import Date, DateTime, Dict, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError

from app.core import limits
from app.exit.models import (
    BALANCE_POLICIES,
    CHOICES,
    EXIT_STATES,
    MAX_NOTICE_DAYS,
    MIN_NOTICE_DAYS,
)
from app.web.api.schemas import NON_BLANK_TEXT, PLAIN_TEXT, JsonBool, WholeNumber

# Ten years: a notice beyond it is a typo, and every later date has an instant in any zone.

FIRST_EXIT_DATE = date(2000, 1, 1)
LAST_EXIT_DATE = date(9998, 12, 31)


def _plannable(value: date) -> None:
    if not FIRST_EXIT_DATE <= value <= LAST_EXIT_DATE:
        raise ValidationError(
            f"must be between {FIRST_EXIT_DATE.isoformat()} and {LAST_EXIT_DATE.isoformat()}"
        )


class ExitPlanIn(Schema):
    exit_date = Date(
        required=True,
        validate=_plannable,
        metadata={
            "description": "Service ends at 00:00 of this day in the platform's time zone "
            f"({FIRST_EXIT_DATE.isoformat()} to {LAST_EXIT_DATE.isoformat()})"
        },
    )
    notice_days = WholeNumber(
        load_default=None,
        allow_none=True,
        validate=Range(min=MIN_NOTICE_DAYS, max=MAX_NOTICE_DAYS),
        metadata={"description": "The notice period in days: 90 when absent, at least 30"},
    )


class ExitChoiceIn(Schema):
    msisdn = String(required=True, validate=[Length(min=1, max=20), NON_BLANK_TEXT])
    choice = String(required=True, validate=OneOf(CHOICES))
    note = String(
        load_default="",
        validate=[Length(max=limits.NOTE), PLAIN_TEXT],
        metadata={"description": "What the subscriber said (an integration may leave it out)"},
    )


class ExitCancelIn(Schema):
    reason = String(required=True, validate=[Length(min=1, max=limits.NOTE), NON_BLANK_TEXT])


class ExitConfirmIn(Schema):
    confirm = JsonBool(
        required=True,
        validate=OneOf([True], error="must be true: the step cannot be undone"),
        metadata={"description": "true: the caller has read what the step will do"},
    )


class ExitOut(Schema):
    id = WholeNumber(required=True)
    state = String(required=True, validate=OneOf(EXIT_STATES))
    exit_date = String(required=True, metadata={"description": "YYYY-MM-DD"})
    exit_at = DateTime(required=True, metadata={"description": "The exit instant"})
    notice_days = WholeNumber(required=True)
    announced_at = DateTime(allow_none=True)
    executed_at = DateTime(allow_none=True)
    completed_at = DateTime(allow_none=True)


class ExitMoneyOut(Schema):
    currency = String(required=True)
    liability_before = WholeNumber(
        required=True, metadata={"description": "Positive balances and unused plan value"}
    )
    refunds = WholeNumber(required=True)
    transferred_balances = WholeNumber(required=True)
    written_off = WholeNumber(required=True, metadata={"description": "Arrears written off"})


class ExitPreviewOut(Schema):
    """What executing the exit would do with today's balances and choices."""

    lines = WholeNumber(required=True)
    transferred = WholeNumber(required=True)
    terminated = WholeNumber(required=True)
    choices = Dict(
        keys=String(),
        values=WholeNumber(),
        required=True,
        metadata={"description": "Live lines by choice: transfer, terminate, none"},
    )
    refunds = WholeNumber(required=True)
    transferred_balances = WholeNumber(required=True)
    liability_before = WholeNumber(required=True)
    written_off = WholeNumber(required=True)
    currencies = List(String(), required=True)
    by_currency = List(Nested(ExitMoneyOut), required=True)


class ExitResultOut(Schema):
    """What the execution did (`mvno exit execute --json`, and more)."""

    lines = WholeNumber(required=True)
    transferred = WholeNumber(required=True)
    terminated = WholeNumber(required=True)
    refunds = WholeNumber(required=True)
    transferred_balances = WholeNumber(required=True)
    liability_before = WholeNumber(required=True)
    written_off = WholeNumber(required=True)
    numbers_returned = WholeNumber(required=True)
    customers = WholeNumber(required=True)
    balance_policy = String(required=True, validate=OneOf(BALANCE_POLICIES))
    by_currency = List(Nested(ExitMoneyOut), required=True)


class ExitStatusOut(Schema):
    exit = Nested(ExitOut, required=True, allow_none=True)
    earliest_exit_date = String(
        required=True, metadata={"description": "With the default notice, from now"}
    )
    default_notice_days = WholeNumber(required=True)
    min_notice_days = WholeNumber(required=True)
    balance_policy = String(required=True, validate=OneOf(BALANCE_POLICIES))
    preview = Nested(ExitPreviewOut, required=True, allow_none=True)
    result = Nested(ExitResultOut, required=True, allow_none=True)
    executable = JsonBool(
        required=True, metadata={"description": "Announced, and its instant has come"}
    )
    files = List(String(), required=True, metadata={"description": "The exit's files so far"})


class ExitChoiceOut(Schema):
    msisdn = String(required=True)
    choice = String(required=True, validate=OneOf(CHOICES))
    given_by = String(required=True)
    chosen_at = DateTime(required=True)


class ExitFileList(Schema):
    items = List(String(), required=True, metadata={"description": "Every exit file, by name"})
