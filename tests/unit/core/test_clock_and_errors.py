from datetime import UTC, datetime

import pytest

from app.core.clock import parse_instant
from app.core.errors import DomainError, InvalidInput


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
