"""The `mvno` command line: conventions of DESIGN §13 and the commands of the skeleton."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from app.auth.models import StaffUser
from app.core.audit import AuditEntry
from app.core.migrate import head_revision
from tests.factories import make_api_key

ROOT = Path(__file__).resolve().parents[2]
MVNO = Path(sys.executable).parent / "mvno"


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def test_staff_create_reads_the_password_from_stdin(cli, session):
    result = cli(
        "staff",
        "create",
        "--email",
        "Ops@Example.com",
        "--role",
        "admin",
        "--json",
        "--now",
        "2026-10-01T09:00:00+08:00",
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "id": json.loads(result.stdout)["id"],
        "email": "ops@example.com",
        "role": "admin",
    }
    user = session.exec(select(StaffUser)).one()
    assert user.created_at.isoformat() == "2026-10-01T01:00:00+00:00"
    audit = session.exec(select(AuditEntry)).one()
    assert (audit.actor_kind, audit.action) == ("cli", "staff.create")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--email", "a@example.com", "--role", "boss"], "a-long-password\n", "Unknown role"),
        (["--email", "a@example.com", "--role", "care"], "short\n", "at least 10 characters"),
        (["--email", "nope", "--role", "care"], "a-long-password\n", "Not a valid e-mail"),
        (["--email", "a@example.com", "--role", "care"], "", "no password given"),
        (
            ["--email", "a@example.com", "--role", "care", "--now", "2026-10-01"],
            "a-long-password\n",
            "has no UTC offset",
        ),
    ],
)
def test_refusals_exit_1_with_one_line_on_stderr(cli, session, args, stdin, message):
    result = cli("staff", "create", *args, input=stdin)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert session.exec(select(StaffUser)).all() == []


def test_duplicate_staff_exits_1_and_keeps_the_first(cli, session):
    assert (
        cli(
            "staff",
            "create",
            "--email",
            "d@example.com",
            "--role",
            "care",
            input="a-long-password\n",
        ).exit_code
        == 0
    )
    result = cli(
        "staff", "create", "--email", "D@example.com", "--role", "admin", input="a-long-password\n"
    )
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert [u.role for u in session.exec(select(StaffUser))] == ["care"]


def test_demo_load_is_idempotent(cli):
    first = json.loads(cli("demo", "load", "--size", "0", "--json").stdout)
    second = json.loads(cli("demo", "load", "--size", "0", "--json").stdout)
    assert first["staff_created"] == 5 and first["subscribers_created"] == 2
    assert second["staff_created"] == 0 and second["subscribers_created"] == 0
    listed = json.loads(cli("staff", "list", "--json").stdout)["staff"]
    assert sorted(u["role"] for u in listed) == ["admin", "auditor", "care", "finance", "wholesale"]
    # The demo subscribers are customers; the first has one cash payment, once.
    balance = json.loads(cli("ledger", "balance", "C-0001", "--json").stdout)
    assert balance["balance"] == 10_000
    assert json.loads(cli("ledger", "check", "--json").stdout)["ok"] is True


def test_api_key_create_and_revoke(cli, session):
    created = json.loads(
        cli("api-key", "create", "--name", "host", "--role", "wholesale", "--json").stdout
    )
    assert created["token"].startswith("mvno_")
    assert cli("api-key", "revoke", str(created["id"])).exit_code == 0
    missing = cli("api-key", "revoke", "99999")
    assert missing.exit_code == 1
    assert "No API key 99999" in missing.stderr


def test_revoked_key_from_the_cli_is_refused_by_the_api(cli, client, session):
    key, token = make_api_key(session)
    cli("api-key", "revoke", str(key.id))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_db_check_agrees(cli):
    result = cli("db", "check")
    assert result.exit_code == 0
    assert "agree" in result.stdout


def run(*args, env, input=None, command=(str(MVNO),)):
    return subprocess.run(
        [*command, *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_installed_mvno_and_flask_entry_points_on_a_fresh_database(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "INSTANCE_PATH": str(tmp_path),
        "PASSWORD_HASH_PROFILE": "cheap",
    }
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {head_revision()}" in upgraded.stdout
    created = run(
        "staff",
        "create",
        "--email",
        "root@example.com",
        "--role",
        "admin",
        "--json",
        env=env,
        input="a-long-password\n",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["email"] == "root@example.com"
    refused = run(
        "staff",
        "create",
        "--email",
        "root@example.com",
        "--role",
        "admin",
        env=env,
        input="a-long-password\n",
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("mvno: A staff user with e-mail root@example.com")
    flask = Path(sys.executable).parent / "flask"
    listed = run("--app", "wsgi", "staff", "list", "--json", env=env, command=(str(flask),))
    assert listed.returncode == 0, listed.stderr
    assert [u["email"] for u in json.loads(listed.stdout)["staff"]] == ["root@example.com"]


def test_unreachable_database_is_a_one_line_refusal(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "INSTANCE_PATH": str(tmp_path),
    }
    result = run("staff", "list", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("mvno: database error:")
    assert "Traceback" not in result.stderr


# -- mvno catalog load: files refused as a whole --------------------------------------

CATALOG = ROOT / "tests" / "fixtures" / "catalog.toml"
REFUSED_CATALOGS = [
    ("a = " + "[" * 100_000 + "\n", "nested too deeply"),
    ("a = " + "{ b = " * 100_000 + "\n", "nested too deeply"),
    ("", "empty: no [[hosts]]"),
    ("  \n\t\n# only comments\n# here\n", "empty: no [[hosts]]"),
]


def catalog_tables(session):
    from numbering.models import NumberBlock
    from plans.models import Plan
    from wholesale.models import HostCarrier, RateCard

    return {
        model.__name__: [tuple(row.model_dump().items()) for row in session.exec(select(model))]
        for model in (HostCarrier, RateCard, NumberBlock, Plan, AuditEntry)
    }


def assert_one_line_refusal(result, message):
    assert result.exit_code == 1, result.output
    # A refusal ends in SystemExit(1); any other exception would be a crash.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mvno: ") and message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("content", "message"), REFUSED_CATALOGS)
def test_catalog_load_refuses_an_unreadable_or_empty_file_in_one_line(
    cli, session, tmp_path, content, message
):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    result = cli("catalog", "load", str(path), "--json")
    assert_one_line_refusal(result, message)
    assert result.stdout == ""
    assert all(rows == [] for rows in catalog_tables(session).values())


def test_catalog_load_refuses_a_currency_change_and_changes_nothing(cli, session, tmp_path):
    assert cli("catalog", "load", str(CATALOG)).exit_code == 0
    before = catalog_tables(session)
    usd = tmp_path / "usd.toml"
    text = CATALOG.read_text(encoding="utf-8").replace('currency = "CNY"', 'currency = "USD"')
    usd.write_text(text, encoding="utf-8")
    result = cli("catalog", "load", str(usd))
    assert_one_line_refusal(result, "host HOSTA is in CNY and the file gives USD")
    session.expire_all()
    assert catalog_tables(session) == before


def test_installed_mvno_catalog_load_refuses_bad_files_without_a_traceback(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "INSTANCE_PATH": str(tmp_path),
    }
    assert run("db", "upgrade", env=env).returncode == 0
    for index, (content, message) in enumerate(REFUSED_CATALOGS):
        path = tmp_path / f"bad{index}.toml"
        path.write_text(content, encoding="utf-8")
        result = run("catalog", "load", str(path), env=env)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("mvno: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    loaded = run("catalog", "load", str(CATALOG), "--json", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["hosts"]["created"] == 1
