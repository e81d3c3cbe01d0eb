from datetime import UTC, datetime

import pytest

from app.core.clock import parse_instant
from app.core.errors import DomainError, InvalidInput, clean_text


def test_parse_instant_converts_to_utc():
    assert parse_instant("2026-10-01T00:00:00+08:00") == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert parse_instant("2026-10-01T00:00:00Z") == datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-10-01", "2026-10-01T00:00:00", "yesterday", ""])
def test_parse_instant_refuses_times_without_offset(text):
    with pytest.raises(InvalidInput) as info:
        parse_instant(text, field="at")
    assert info.value.field == "at"
    assert info.value.message.startswith("at: ")


def test_domain_error_keeps_template_and_params_for_translation():
    error = InvalidInput("Password must be at least %(min)s characters.", field="pw", min=10)
    assert error.message == "Password must be at least 10 characters."
    assert error.template == "Password must be at least %(min)s characters."
    assert error.params == {"min": 10}
    assert error.to_dict() == {
        "error": {"code": "invalid_input", "message": error.message, "field": "pw"}
    }


def test_domain_error_message_with_percent_and_no_params_is_left_alone():
    assert DomainError("100% sure").message == "100% sure"


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("  Ops team ", {}, "Ops team"),
        ("", {}, ""),
        (None, {}, ""),
        ("运维\u3000组", {}, "运维\u3000组"),
    ],
)
def test_clean_text_trims_spaces(value, kwargs, expected):
    assert clean_text(value, field="name", max_length=20, **kwargs) == expected


@pytest.mark.parametrize(
    ("value", "required", "message"),
    [
        ("a\x00b", False, "control characters"),
        ("tab\there", False, "control characters"),
        ("\x85", False, "control characters"),
        ("   ", True, "name is required"),
        ("x" * 21, False, "at most 20 characters"),
    ],
)
def test_clean_text_refuses(value, required, message):
    with pytest.raises(InvalidInput, match=message) as info:
        clean_text(value, field="name", max_length=20, required=required)
    assert info.value.field == "name"
