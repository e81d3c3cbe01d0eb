import re
from pathlib import Path

import pytest

from app.core.config import VARIABLES, Settings
from app.core.errors import ConfigError

README = Path(__file__).resolve().parents[3] / "README.md"


def test_defaults_need_no_configuration(tmp_path):
    settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'mvno.db'}"
    assert settings.currency == "CNY"
    assert settings.prepay_cap_months == 24
    assert settings.prepay_reference_monthly_minor == 5000
    assert settings.number_quarantine_days == 90
    assert settings.timezone == "Asia/Shanghai"
    assert settings.cookie_secure is True
    assert not settings.stripe_enabled


def test_postgres_urls_get_the_psycopg_driver():
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/db"})
    assert settings.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PREPAY_CAP_MONTHS": "two"}, "PREPAY_CAP_MONTHS must be a whole number"),
        ({"PREPAY_CAP_MONTHS": "0"}, "PREPAY_CAP_MONTHS must be at least 1"),
        ({"PREPAY_REFERENCE_MONTHLY": "50.001"}, "more than 2 decimal places"),
        ({"COOKIE_SECURE": "maybe"}, "COOKIE_SECURE must be 1 or 0"),
        ({"TIMEZONE": "Mars/Olympus"}, "IANA time zone"),
        ({"CURRENCY": "RMB1"}, "ISO 4217"),
        ({"MVNO_ENV": "production"}, "SECRET_KEY must be set"),
    ],
)
def test_bad_configuration_is_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_stripe_needs_both_keys():
    assert not Settings.from_env({"STRIPE_SECRET_KEY": "sk_test"}).stripe_enabled
    assert Settings.from_env(
        {"STRIPE_SECRET_KEY": "sk_test", "STRIPE_WEBHOOK_SECRET": "whsec"}
    ).stripe_enabled


def test_readme_documents_every_variable_with_its_default():
    readme = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", readme, flags=re.M))
    for name, default, _description in VARIABLES:
        assert name in rows, f"README configuration table lacks {name}"
        assert default in rows[name], f"README gives {rows[name]!r} as default of {name}"


def test_development_secret_is_shared_by_every_process(tmp_path):
    first = Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).secret_key
    second = Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).secret_key
    assert first == second
    assert len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"}).secret_key == "k"
