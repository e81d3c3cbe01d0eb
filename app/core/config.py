"""Configuration read from environment variables (DESIGN §3).

Every variable, its default and its meaning is listed in README's
configuration table; `Settings.from_env` is the single place that reads
them, so the table and the code cannot drift apart unnoticed
(tests/unit/core/test_config.py compares them).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.errors import ConfigError
from app.core.money import parse_amount

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"

# (name, default, description) — the README table is generated from this list.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "DATABASE_URL",
        "sqlite:///instance/mvno.db",
        "SQLAlchemy URL; `postgresql+psycopg://user@host/db` in production",
    ),
    (
        "SECRET_KEY",
        "(random per process, dev only)",
        "Signs sessions and CSRF tokens; required when `MVNO_ENV=production`",
    ),
    (
        "PII_KEY",
        "instance/pii_key",
        "Fernet key(s), comma-separated, newest first, that encrypt real-name data at rest;"
        " required in production",
    ),
    ("MVNO_ENV", "development", "`production` refuses to start without `SECRET_KEY`"),
    ("INSTANCE_PATH", "instance", "Folder for the SQLite database, locks and outbox files"),
    ("CURRENCY", "CNY", "ISO 4217 currency of customer money"),
    ("COUNTRY", "CN", "ISO 3166 country for phone numbers and IDs"),
    ("PREPAY_CAP_MONTHS", "24", "Months of fees a subscriber may prepay"),
    (
        "PREPAY_REFERENCE_MONTHLY",
        "50.00",
        "Monthly fee used for the cap when a customer has no line",
    ),
    ("NUMBER_QUARANTINE_DAYS", "90", "Days a released number rests before reuse"),
    ("SERVICE_HOTLINE", "10100-0000", "Customer service hotline shown in the store footer"),
    ("SUPERVISION_PHONE", "12300", "Regulator's supervision phone shown in the store footer"),
    ("BRAND_NAME", "Demo Mobile", "Brand shown in the store and console"),
    ("TIMEZONE", "Asia/Shanghai", "Time zone times are shown in (stored in UTC)"),
    (
        "COOKIE_SECURE",
        "1",
        "Send session cookies only over HTTPS (`make run` sets 0 for local HTTP)",
    ),
    ("LOGIN_MAX_FAILURES", "5", "Failed logins for one e-mail before it is locked"),
    ("LOGIN_LOCKOUT_MINUTES", "15", "How long a lockout lasts and the window failures count in"),
    (
        "LOGIN_MAX_FAILURES_PER_IP",
        "20",
        "Failed logins from one address within the window before refusal",
    ),
    ("STRIPE_SECRET_KEY", "(unset)", "Enables Stripe Checkout when set with the webhook secret"),
    ("STRIPE_WEBHOOK_SECRET", "(unset)", "Verifies Stripe webhook signatures"),
    (
        "STRIPE_API_BASE",
        "(Stripe's)",
        "Overrides the Stripe API address (tests use a local server)",
    ),
    ("SMTP_HOST", "(unset)", "Mail server for notifications; unset keeps mail in the outbox"),
    ("SMTP_PORT", "587", "Mail server port"),
    ("SMTP_USER", "(unset)", "Mail server login"),
    ("SMTP_PASSWORD", "(unset)", "Mail server password"),
    ("SMTP_FROM", "noreply@localhost", "Sender address of notifications"),
    (
        "SCHEDULER_LOCK_PATH",
        "instance/scheduler.lock",
        "Leader lock file for the scheduler on SQLite",
    ),
    ("PASSWORD_HASH_PROFILE", "default", "`cheap` lowers argon2 cost; for the test suite only"),
    (
        "EXIT_BALANCE_POLICY",
        "refund",
        "At a market exit: `refund` every balance, or `carry` a transferred line's to the host",
    ),
    (
        "PUBLIC_URL",
        "http://127.0.0.1:8000",
        "Address of the store, for links in notices sent outside a web request",
    ),
)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default when unset)."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _development_secret(
    instance_path: Path, name: str = "secret_key", make: Callable[[], str] | None = None
) -> str:
    """A random key kept in the instance folder, shared by every worker and restart.

    Without it each gunicorn worker would sign sessions (or encrypt personal
    data) with its own key, and what one worker wrote the next could not read.
    """
    make = make or (lambda: os.urandom(32).hex())
    path = instance_path / name
    try:
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return make()  # read-only instance folder: per-process key
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        key = make()
        handle.write(key)
    return key


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TIMEZONE must be an IANA time zone name, got {name!r}") from None
    return name


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    instance_path: Path
    environment: str = "development"
    pii_key: str = ""
    currency: str = "CNY"
    country: str = "CN"
    prepay_cap_months: int = 24
    prepay_reference_monthly_minor: int = 5000
    number_quarantine_days: int = 90
    service_hotline: str = "10100-0000"
    supervision_phone: str = "12300"
    brand_name: str = "Demo Mobile"
    timezone: str = "Asia/Shanghai"
    cookie_secure: bool = True
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    login_max_failures_per_ip: int = 20
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    smtp: dict[str, str] = field(default_factory=dict)
    scheduler_lock_path: Path | None = None
    password_hash_profile: str = "default"  # noqa: S105 (a profile name, not a secret)
    exit_balance_policy: str = "refund"
    public_url: str = "http://127.0.0.1:8000"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_webhook_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = env.get("MVNO_ENV", "development")
        instance_path = Path(env.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
        if not instance_path.is_absolute():
            instance_path = PROJECT_ROOT / instance_path
        database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'mvno.db'}"
        if database_url.startswith("postgres://") or database_url.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; accept the common short spellings.
            database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        secret_key = env.get("SECRET_KEY") or ""
        if not secret_key:
            if environment == "production":
                raise ConfigError("SECRET_KEY must be set when MVNO_ENV=production")
            secret_key = _development_secret(instance_path)
        pii_key = env.get("PII_KEY") or ""
        if not pii_key:
            if environment == "production":
                raise ConfigError("PII_KEY must be set when MVNO_ENV=production")
            pii_key = _development_secret(instance_path, "pii_key", _fernet_key)
        currency = (env.get("CURRENCY") or "CNY").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"CURRENCY must be an ISO 4217 code, got {currency!r}")
        reference = env.get("PREPAY_REFERENCE_MONTHLY") or "50.00"
        try:
            reference_minor = parse_amount(reference, places=2)
        except ValueError as exc:
            raise ConfigError(f"PREPAY_REFERENCE_MONTHLY: {exc}") from None
        lock_path = env.get("SCHEDULER_LOCK_PATH")
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            instance_path=instance_path,
            environment=environment,
            pii_key=pii_key,
            currency=currency,
            country=(env.get("COUNTRY") or "CN").upper(),
            prepay_cap_months=_int(env, "PREPAY_CAP_MONTHS", 24, minimum=1),
            prepay_reference_monthly_minor=reference_minor,
            number_quarantine_days=_int(env, "NUMBER_QUARANTINE_DAYS", 90),
            service_hotline=env.get("SERVICE_HOTLINE") or "10100-0000",
            supervision_phone=env.get("SUPERVISION_PHONE") or "12300",
            brand_name=env.get("BRAND_NAME") or "Demo Mobile",
            timezone=_timezone(env.get("TIMEZONE") or "Asia/Shanghai"),
            cookie_secure=_bool(env, "COOKIE_SECURE", True),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 5, minimum=1),
            login_lockout_minutes=_int(env, "LOGIN_LOCKOUT_MINUTES", 15, minimum=1),
            login_max_failures_per_ip=_int(env, "LOGIN_MAX_FAILURES_PER_IP", 20, minimum=1),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            smtp={k: v for k, v in env.items() if k.startswith("SMTP_")},
            scheduler_lock_path=Path(lock_path) if lock_path else instance_path / "scheduler.lock",
            password_hash_profile=env.get("PASSWORD_HASH_PROFILE", "default"),
            exit_balance_policy=_choice(env, "EXIT_BALANCE_POLICY", ("refund", "carry")),
            public_url=(env.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
        )
