"""The `mvno api-key` group: API keys for integrations."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, refusals

api_key_cli = AppGroup("api-key", help="API keys for integrations.")


@api_key_cli.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True)
@json_option
@now_option
@refusals
def api_key_create(name: str, role: str, as_json: bool, now: datetime) -> None:
    """Create an API key and print its token (shown only once)."""
    from app.auth.api_keys import create_api_key
    from app.core.audit import Actor

    with database().transaction() as session:
        key, token = create_api_key(session, name=name, role=role, actor=Actor.cli(), now=now)
        data = {"id": key.id, "prefix": key.prefix, "role": key.role, "token": token}
    emit(data, as_json=as_json, text=token)


@api_key_cli.command("revoke")
@click.argument("key_id", type=int)
@now_option
@refusals
def api_key_revoke(key_id: int, now: datetime) -> None:
    """Revoke the API key KEY_ID."""
    from app.auth.api_keys import revoke_api_key
    from app.core.audit import Actor

    with database().transaction() as session:
        key = revoke_api_key(session, key_id=key_id, actor=Actor.cli(), now=now)
    click.echo(f"revoked API key {key.prefix}")
