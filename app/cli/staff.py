"""The `mvno staff` group: console staff accounts."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from app.cli.common import database, emit, json_option, now_option, read_password, refusals

staff_cli = AppGroup("staff", help="Console staff accounts.")


@staff_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, help="admin, care, finance, wholesale or auditor")
@click.option("--name", default="")
@json_option
@now_option
@refusals
def staff_create(email: str, role: str, name: str, as_json: bool, now: datetime) -> None:
    """Create a staff user; the password comes from stdin or a prompt."""
    from app.auth.services import check_role, create_staff
    from app.core.audit import Actor

    check_role(role)  # before asking for a password that would be refused anyway
    password = read_password("Password")
    with database().transaction() as session:
        user = create_staff(
            session,
            email=email,
            role=role,
            password=password,
            name=name,
            actor=Actor.cli(),
            now=now,
        )
        data = {"id": user.id, "email": user.email, "role": user.role}
    emit(data, as_json=as_json, text=f"created staff user {data['email']} ({data['role']})")


@staff_cli.command("list")
@json_option
@refusals
def staff_list(as_json: bool) -> None:
    """List staff users."""
    from app.auth.services import list_staff

    with database().transaction(write=False) as session:
        users = [
            {"id": u.id, "email": u.email, "role": u.role, "active": u.is_active}
            for u in list_staff(session)
        ]
    text = "\n".join(
        f"{u['id']:>5}  {u['email']:<40} {u['role']:<10} {'active' if u['active'] else 'disabled'}"
        for u in users
    )
    emit({"staff": users}, as_json=as_json, text=text or "no staff users")
