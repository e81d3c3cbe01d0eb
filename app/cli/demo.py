"""The `mvno demo` group: demo data for a local installation."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals, settings

demo_cli = AppGroup("demo", help="Demo data for a local installation.")


def _text(report: dict[str, object]) -> str:
    """The report as lines of `key: value`, the business's figures one a line."""
    lines = [f"{k}: {v}" for k, v in report.items() if k != "business"]
    business = report.get("business")
    if isinstance(business, dict):
        lines += [f"business.{k}: {v}" for k, v in business.items()]
    return "\n".join(lines)


@demo_cli.command("load")
@click.option(
    "--seed", type=int, default=2026, show_default=True, help="Seed of the demo business."
)
@click.option(
    "--size",
    type=click.IntRange(0, 3000),
    default=300,
    show_default=True,
    help="Customers of the demo business (0: the basics alone).",
)
@json_option
@now_option
@refusals
def demo_load(seed: int, size: int, as_json: bool, now: datetime) -> None:
    """Load demo staff (one per role), subscribers and a living business. Idempotent."""
    from app.demo import load_demo

    report = load_demo(database(), settings=settings(), now=now, seed=seed, size=size)
    emit(report, as_json=as_json, text=_text(report))
