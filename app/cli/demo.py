"""The `mvno demo` group: demo data for a local installation."""

from __future__ import annotations

from datetime import datetime

from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

demo_cli = AppGroup("demo", help="Demo data for a local installation.")


@demo_cli.command("load")
@json_option
@now_option
@refusals
def demo_load(as_json: bool, now: datetime) -> None:
    """Load demo staff (one per role) and subscribers. Idempotent."""
    from app.core.pii import PiiCipher
    from app.demo import load_demo
    from app.payments.services import MoneyPolicy

    config = settings()
    with database().transaction() as session:
        report = load_demo(
            session,
            now=now,
            policy=MoneyPolicy.from_settings(config),
            cipher=PiiCipher(config.pii_key),
        )
    text = "\n".join(f"{k}: {v}" for k, v in report.items())
    emit(report, as_json=as_json, text=text)
