"""`import_subscribers` (DESIGN §13): every reject reason, all or nothing, the cap, re-import."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import Session, col, select
from stdnum import luhn

from app.catalog import load_catalog
from app.charging.models import LinePeriod
from app.core.audit import Actor, AuditEntry
from app.core.pii import PiiCipher
from app.ledger.balances import customer_balance
from app.ledger.checks import check_ledger
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.onboarding import migration_checks, migration_rows
from app.onboarding.errors import SubscriberImportRejected
from app.onboarding.migration import HEADER, SubscriberImportReport, import_subscribers
from app.subscribers.kyc import id_check_digit_ok, normalize_id
from app.subscribers.models import Customer, Line
from numbering.blocks import add_number_block
from numbering.lifecycle import assign_number, reserve_number
from numbering.models import PhoneNumber, Sim
from numbering.search import get_number
from numbering.sim_import import import_sims
from tests.factories import NOW
from tests.unit.plans.helpers import make_plan
from tests.unit.subscribers.helpers import FIRST, World, make_world
from tests.unit.wholesale.helpers import make_host
from wholesale.models import HostCarrier

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ACTOR = Actor.cli()
CIPHER = PiiCipher(Fernet.generate_key().decode("ascii"))
CAP_MONTHS = 24
CURRENCY = "CNY"
GOOD_ID = "11010519491231002X"  # a resident ID whose check digit is right
START = "2026-10-01T00:00:00+08:00"
_serials = itertools.count(1)


def iccid() -> str:
    body = f"898601260{next(_serials):09d}"
    return body + luhn.calc_check_digit(body)


def msisdn(n: int) -> str:
    return f"+{FIRST + n}"


def add_sims(session: Session, host: HostCarrier, count: int) -> list[str]:
    """`count` SIMs in stock on `host`, through the SIM import."""
    iccids = [iccid() for _ in range(count)]
    lines = [f"{code},4600{code[-11:]},physical," for code in iccids]
    assert host.id is not None
    import_sims(
        session,
        text="\n".join(["iccid,imsi,kind,lpa", *lines]),
        filename="sims.csv",
        host_id=host.id,
        actor=ACTOR,
        now=NOW,
    )
    return iccids


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)


@pytest.fixture
def sims(session: Session, world: World) -> list[str]:
    return add_sims(session, world.host, 8)


def row(**values: Any) -> str:
    fields = {
        "customer_ref": "C-1001",
        "name": "张伟",
        "email": "zhang.wei@example.com",
        "id_type": "cn_ric",
        "id_number": GOOD_ID,
        "msisdn": msisdn(1),
        "iccid": "",
        "plan_code": "LITE30",
        "period_start": START,
        "balance": "100.00",
    }
    fields.update(values)
    return ",".join(str(fields[column]) for column in HEADER.split(","))


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def run(session: Session, text: str | bytes, *, now=NOW) -> SubscriberImportReport:
    return import_subscribers(
        session,
        text=text,
        filename="subscribers.csv",
        cipher=CIPHER,
        currency=CURRENCY,
        cap_months=CAP_MONTHS,
        actor=ACTOR,
        now=now,
    )


def refused(session: Session, text: str | bytes) -> SubscriberImportRejected:
    with pytest.raises(SubscriberImportRejected) as caught:
        run(session, text)
    return caught.value


def count(session: Session, model: Any, *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def snapshot(session: Session) -> dict[str, Any]:
    """Everything an import writes, to show that a refused file wrote nothing."""
    return {
        "customers": count(session, Customer),
        "lines": count(session, Line),
        "periods": count(session, LinePeriod),
        "entries": count(session, JournalEntry),
        "postings": count(session, Posting),
        "accounts": count(session, LedgerAccount),
        "audit": count(session, AuditEntry),
        "assigned numbers": count(session, PhoneNumber, col(PhoneNumber.status) == "assigned"),
        "sims in stock": count(session, Sim, col(Sim.status) == "in_stock"),
    }


def check(session: Session) -> Any:
    return check_ledger(session, cap_months=CAP_MONTHS, reference_monthly_minor=5000)


# -- the sample file ----------------------------------------------------------------------


def load_sample_supply(session: Session) -> None:
    load_catalog(
        session,
        text=(FIXTURES / "catalog.toml").read_text(encoding="utf-8"),
        filename="catalog.toml",
        actor=ACTOR,
        now=NOW,
    )
    host = session.exec(select(HostCarrier).where(HostCarrier.code == "HOSTA")).one()
    import_sims(
        session,
        text=(FIXTURES / "sims.csv").read_text(encoding="utf-8"),
        filename="sims.csv",
        host_id=host.id or 0,
        actor=ACTOR,
        now=NOW,
    )


@pytest.mark.parametrize("folder", ["tests/fixtures", "app/demo"])
def test_the_sample_file_imports_with_its_check_digits_as_warnings(session, folder):
    load_sample_supply(session)
    path = Path(__file__).resolve().parents[3] / folder / "subscribers.csv"
    report = run(session, path.read_bytes())
    assert report.to_dict() == {
        "file": "subscribers.csv",
        "rows": 2,
        "customers": 2,
        "lines": 2,
        "balance_total": 10_000,
        "currency": "CNY",
        "already_imported": False,
        "rejected": [],
        "warnings": [
            {"row": 2, "field": "id_number", "reason": report.warnings[0].reason},
            {"row": 3, "field": "id_number", "reason": report.warnings[1].reason},
        ],
        "id_check_digit_mismatch": 2,
    }
    assert "check digit" in report.warnings[0].reason

    zhang = session.exec(select(Customer).where(Customer.ref == "C-0001")).one()
    assert (zhang.name, zhang.email, zhang.id_type) == ("张伟", "zhang.wei@example.com", "cn_ric")
    assert zhang.id_number_masked == "1101**********0022"
    assert zhang.id_number_enc and "110105194912310022" not in zhang.id_number_enc
    assert CIPHER.decrypt(zhang.id_number_enc) == "110105194912310022"

    line = session.exec(select(Line).where(Line.msisdn == "+8617012340001")).one()
    assert (line.status, line.customer_id, line.auto_renew) == ("active", zhang.id, True)
    period = session.exec(select(LinePeriod).where(LinePeriod.line_id == line.id)).one()
    assert period.start.isoformat() == "2026-09-30T16:00:00+00:00"
    assert period.end - period.start == timedelta(days=30)
    assert line.period_end == period.end
    assert (line.service_started_at, line.period_gap_at) == (period.start, None)
    assert (period.data_kb, period.voice_s, period.sms) == (10240 * 1024, 200 * 60, 100)
    assert (period.price_minor, period.entry_id) == (3900, None)
    sim = session.get(Sim, line.sim_id)
    assert sim is not None and (sim.iccid, sim.status) == ("8986012600000000013", "active")
    number = get_number(session, "+8617012340001")
    assert number.status == "assigned"

    li_na = session.exec(select(Customer).where(Customer.ref == "C-0002")).one()
    second = session.exec(select(Line).where(Line.msisdn == "+8617012340002")).one()
    assert second.period_end is not None
    assert second.period_end.isoformat() == "2026-11-04T01:30:00+00:00"
    assert customer_balance(session, customer_id=zhang.id or 0) == 10_000
    assert customer_balance(session, customer_id=li_na.id or 0) == 0

    entry = session.exec(select(JournalEntry)).one()  # none for a zero balance
    assert (entry.kind, entry.idempotency_key, entry.external_ref) == (
        "opening_balance",
        "import:C-0001",
        "C-0001",
    )
    kinds = dict(
        session.exec(
            select(LedgerAccount.kind, Posting.amount_minor)
            .join(Posting, col(Posting.account_id) == col(LedgerAccount.id))
            .where(Posting.entry_id == entry.id)
        ).all()
    )
    assert kinds == {"customer_prepaid": 10_000, "adjustments": -10_000}
    assert check(session).ok

    actions = session.exec(
        select(AuditEntry.action, AuditEntry.target_id).where(
            col(AuditEntry.action).in_(["customer.import", "subscribers.import"])
        )
    ).all()
    assert sorted(actions) == [
        ("customer.import", "C-0001"),
        ("customer.import", "C-0002"),
        ("subscribers.import", actions[-1][1]),
    ]
    audit = session.exec(select(AuditEntry).where(AuditEntry.target_id == "C-0001")).one()
    assert audit.details["id_number"] == "1101**********0022"
    assert audit.details["opening_balance_minor"] == 10_000
    assert audit.details["entry_id"] == entry.id
    assert "110105194912310022" not in str(audit.details)


def test_the_same_file_again_is_already_imported_and_changes_nothing(session):
    load_sample_supply(session)
    text = (FIXTURES / "subscribers.csv").read_text(encoding="utf-8")
    run(session, text)
    before = snapshot(session)
    again = run(session, text)
    assert again.already_imported is True
    assert (again.customers, again.lines, again.balance_total_minor) == (2, 2, 10_000)
    assert snapshot(session) == before
    assert check(session).ok


def test_a_known_ref_with_other_lines_or_balance_is_refused(session, world, sims):
    run(session, csv_text(row(iccid=sims[0])))
    before = snapshot(session)
    other_balance = refused(session, csv_text(row(iccid=sims[0], balance="90.00")))
    another_line = refused(session, csv_text(row(msisdn=msisdn(2), iccid=sims[1])))
    for error in (other_balance, another_line):
        assert [(p.line, p.field) for p in error.rejects if p.field == "customer_ref"] == [
            (2, "customer_ref")
        ]
        assert "C-1001 already exists" in error.rejects[0].reason
    assert snapshot(session) == before


# -- customers and the cap --------------------------------------------------------------


def test_rows_of_one_customer_are_one_customer_whose_cap_counts_every_line(session, world, sims):
    # LITE30 (39.00) + MAX60 (69.00): cap 24 × 108.00 = 2,592.00; LITE30 alone: 936.00.
    text = csv_text(
        row(iccid=sims[0], balance="1000.00"),
        row(msisdn=msisdn(2), iccid=sims[1], plan_code="MAX60", balance="1592.00"),
    )
    report = run(session, text)
    assert (report.customers, report.lines, report.balance_total_minor) == (1, 2, 259_200)
    customer = session.exec(select(Customer).where(Customer.ref == "C-1001")).one()
    assert count(session, Line, Line.customer_id == customer.id) == 2
    assert customer_balance(session, customer_id=customer.id or 0) == 259_200
    assert count(session, JournalEntry) == 1  # one opening entry per customer
    assert check(session).ok


@pytest.mark.parametrize(("balance", "accepted"), [("936.00", True), ("936.01", False)])
def test_an_opening_balance_above_the_cap_is_refused_naming_the_cap(
    session, world, sims, balance, accepted
):
    text = csv_text(row(iccid=sims[0], balance=balance))
    if accepted:
        assert run(session, text).balance_total_minor == 93_600
        assert check(session).ok
        return
    error = refused(session, text)
    [problem] = error.rejects
    assert (problem.line, problem.field) == (2, "balance")
    assert "936.01" in problem.reason and "cap of 936.00" in problem.reason
    assert count(session, Customer, Customer.ref == "C-1001") == 0


def test_the_cap_is_the_sum_over_the_customers_rows(session, world, sims):
    text = csv_text(
        row(iccid=sims[0], balance="500.00"),
        row(msisdn=msisdn(2), iccid=sims[1], balance="500.00"),  # 2 × LITE30: cap 1,872.00
        row(customer_ref="C-1002", msisdn=msisdn(3), iccid=sims[2], balance="600.00"),
        row(customer_ref="C-1002", msisdn=msisdn(4), iccid=sims[3], balance="400.00"),
    )
    assert run(session, text).customers == 2
    one_line = csv_text(
        row(customer_ref="C-2001", msisdn=msisdn(5), iccid=sims[4], balance="500.00"),
        row(
            customer_ref="C-2001", msisdn=msisdn(6), iccid=sims[5], balance="0.00", plan_code="NOPE"
        ),
    )
    # The cap of a customer with a refused line is not computed from a guess.
    error = refused(session, one_line)
    assert [(p.line, p.field) for p in error.rejects] == [(3, "plan_code")]


def test_rows_of_one_customer_must_agree(session, world, sims):
    error = refused(
        session,
        csv_text(
            row(iccid=sims[0]),
            row(msisdn=msisdn(2), iccid=sims[1], name="Zhang Wei", email="z@example.com"),
        ),
    )
    assert [(p.line, p.field) for p in error.rejects] == [(3, "name"), (3, "email")]
    assert "line 2" in error.rejects[0].reason


# -- every reject reason ----------------------------------------------------------------


BAD_FIELDS: list[tuple[dict[str, str], str, str]] = [
    ({"customer_ref": "c 1"}, "customer_ref", "capital letters"),
    ({"customer_ref": ""}, "customer_ref", "capital letters"),
    ({"customer_ref": "C-" + "9" * 19}, "customer_ref", "1 to 20"),
    ({"name": ""}, "name", "name is required"),
    ({"email": "not-an-email"}, "email", "not a valid e-mail"),
    ({"email": "a@b@example.com"}, "email", "not a valid e-mail"),
    ({"id_type": "driver"}, "id_type", "cn_ric, passport"),
    ({"id_number": "12345"}, "id_number", "not a valid Chinese resident ID"),
    ({"id_number": "110105194913310022"}, "id_number", "not a valid Chinese resident ID"),
    ({"id_type": "passport", "id_number": "E1"}, "id_number", "passport number"),
    ({"msisdn": "8617012340001"}, "msisdn", "E.164"),
    ({"msisdn": "+8613800000000"}, "msisdn", "not in our number blocks"),
    ({"iccid": "12345"}, "iccid", "18 to 22 digits"),
    ({"iccid": "8986012699999999998"}, "iccid", "not in our stock"),
    ({"plan_code": "NOPE"}, "plan_code", "no plan NOPE"),
    ({"plan_code": ""}, "plan_code", "required"),
    ({"plan_code": "lite 30"}, "plan_code", "not a plan code"),
    ({"name": "Zhang\x07"}, "name", "control characters"),
    ({"plan_code": "LITE\x0030"}, "plan_code", "not a plan code"),
    ({"email": "a\x00b@example.com"}, "email", "not a valid e-mail"),
    ({"period_start": "2026-10-01T00:00:00"}, "period_start", "with offset"),
    ({"period_start": "1 October 2026"}, "period_start", "ISO 8601"),
    ({"period_start": "9999-12-31T23:00:00-05:00"}, "period_start", "ISO 8601"),
    ({"period_start": "9999-12-01T00:00:00+00:00"}, "period_start", "years 2000 to 2099"),
    ({"period_start": "1999-12-31T23:59:59Z"}, "period_start", "years 2000 to 2099"),
    ({"balance": "10.001"}, "balance", "at most 2 decimals"),
    ({"balance": "ten"}, "balance", "at most 2 decimals"),
    ({"balance": "1e3"}, "balance", "at most 2 decimals"),
    ({"balance": "-5.00"}, "balance", "must not be negative"),
    ({"balance": "20000000.00"}, "balance", "at most 10000000.00"),
]


@pytest.mark.parametrize(("values", "column", "reason"), BAD_FIELDS)
def test_a_bad_field_refuses_the_file_with_its_reason(session, world, sims, values, column, reason):
    values = {"iccid": sims[0], **values}
    good = row(customer_ref="C-2000", msisdn=msisdn(9), iccid=sims[1])
    before = snapshot(session)
    error = refused(session, csv_text(good, row(**values)))
    assert [(p.line, p.field) for p in error.rejects] == [(3, column)]
    assert reason in error.rejects[0].reason
    assert "1 of 2 rows refused; nothing imported" in error.message
    assert snapshot(session) == before


def test_a_number_or_sim_that_is_not_free_is_refused(session, world, sims):
    taken = msisdn(3)
    reserve_number(session, msisdn=taken, holder="order-1", now=NOW)
    assign_number(session, msisdn=taken, holder="order-1", now=NOW)
    held = msisdn(4)
    reserve_number(session, msisdn=held, holder="order-2", now=NOW)
    sim = session.exec(select(Sim).where(Sim.iccid == sims[2])).one()
    sim.status = "assigned"
    session.add(sim)
    session.flush()
    error = refused(
        session,
        csv_text(
            row(msisdn=taken, iccid=sims[0]),
            row(customer_ref="C-1002", msisdn=held, iccid=sims[1]),
            row(customer_ref="C-1003", msisdn=msisdn(5), iccid=sims[2]),
        ),
    )
    assert [(p.line, p.field) for p in error.rejects] == [
        (2, "msisdn"),
        (3, "msisdn"),
        (4, "iccid"),
    ]
    assert "not available (it is assigned)" in error.rejects[0].reason
    assert "not available (it is reserved)" in error.rejects[1].reason
    assert "not in stock (it is assigned)" in error.rejects[2].reason


def test_a_number_whose_hold_ran_out_is_free(session, world, sims):
    held = msisdn(4)
    reserve_number(session, msisdn=held, holder="order-2", now=NOW - timedelta(hours=1))
    run(session, csv_text(row(msisdn=held, iccid=sims[0])))
    number = get_number(session, held)
    assert (number.status, number.reserved_until) == ("assigned", None)


def test_numbers_and_sims_must_be_on_the_plans_host(session, world, sims):
    other = make_host(session, code="HOSTB")
    assert other.id is not None
    add_number_block(
        session,
        host_id=other.id,
        first="+8617099990000",
        last="+8617099990009",
        actor=ACTOR,
        now=NOW,
    )
    foreign_sims = add_sims(session, other, 1)
    error = refused(
        session,
        csv_text(
            row(iccid=foreign_sims[0]),
            row(customer_ref="C-1002", msisdn="+8617099990001", iccid=sims[0]),
        ),
    )
    assert [(p.line, p.field) for p in error.rejects] == [(2, "iccid"), (3, "msisdn")]
    assert "belongs to host HOSTB, but plan LITE30 is on host HOSTA" in error.rejects[0].reason
    assert "is a number of host HOSTB" in error.rejects[1].reason


def test_a_plan_that_is_not_on_sale_is_refused(session, world, sims):
    assert world.host.id is not None
    make_plan(session, host_id=world.host.id, code="DRAFT9")
    error = refused(session, csv_text(row(iccid=sims[0], plan_code="DRAFT9")))
    assert error.rejects[0].field == "plan_code"
    assert "not on sale (its latest version is draft)" in error.rejects[0].reason


def test_a_number_that_already_had_a_line_is_refused(session, world, sims):
    """A number back from quarantine is available, but `line.msisdn` is unique."""
    run(session, csv_text(row(iccid=sims[0])))
    number = get_number(session, msisdn(1))
    number.status = "available"
    session.add(number)
    session.flush()
    error = refused(session, csv_text(row(customer_ref="C-1002", iccid=sims[1])))
    assert "already has a line" in error.rejects[0].reason


def test_duplicates_within_the_file_are_refused(session, world, sims):
    error = refused(
        session,
        csv_text(
            row(iccid=sims[0]),
            row(customer_ref="C-1002", msisdn=msisdn(1), iccid=sims[0]),
        ),
    )
    assert [(p.line, p.field) for p in error.rejects] == [(3, "msisdn"), (3, "iccid")]
    assert "duplicates line 2" in error.rejects[0].reason


def test_every_bad_row_is_listed_and_nothing_is_written(session, world, sims):
    before = snapshot(session)
    numbers_before = session.exec(select(PhoneNumber.msisdn, PhoneNumber.status)).all()
    error = refused(
        session,
        csv_text(
            row(iccid=sims[0]),
            row(customer_ref="C-1002", msisdn=msisdn(2), iccid=sims[1], email="bad", balance="x"),
            row(customer_ref="C-1003", msisdn=msisdn(3), iccid=sims[2]),
            "C-1004,too,few,columns",
            row(customer_ref="C-1005", msisdn=msisdn(5), iccid=sims[3], plan_code="NOPE"),
        ),
    )
    assert [(p.line, p.field) for p in error.rejects] == [
        (3, "email"),
        (3, "balance"),
        (5, None),
        (6, "plan_code"),
    ]
    assert "expected 10 columns" in error.rejects[2].reason
    assert error.params == {"refused": 3, "rows": 5, "filename": "subscribers.csv"}
    assert error.to_dict()["error"]["details"]["rejected"][0] == {
        "row": 3,
        "field": "email",
        "reason": error.rejects[0].reason,
    }
    assert snapshot(session) == before
    assert session.exec(select(PhoneNumber.msisdn, PhoneNumber.status)).all() == numbers_before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty"),
        ("customer_ref,name\nC-1,x\n", "the first line must be the header"),
        (HEADER + "\n\n", "no rows after the header"),
        (HEADER.encode() + b"\nC-1,\xff\xfe\n", "not UTF-8 text"),
    ],
)
def test_a_bad_file_is_refused_as_a_whole(session, world, text, reason):
    error = refused(session, text)
    [problem] = error.rejects
    assert reason in problem.reason
    assert "nothing imported" in error.message


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(session, world, sims):
    text = "\ufeff" + csv_text(row(iccid=sims[0])).replace("\n", "\r\n")
    assert run(session, text.encode("utf-8")).lines == 1


def test_a_quoted_name_with_a_comma_is_one_field(session, world, sims):
    run(session, csv_text(row(iccid=sims[0], name='"Wei, Zhang"')))
    assert session.exec(select(Customer.name).where(Customer.ref == "C-1001")).one() == (
        "Wei, Zhang"
    )


def test_a_passport_and_no_email_are_accepted(session, world, sims):
    report = run(
        session, csv_text(row(iccid=sims[0], id_type="passport", id_number="e1234567", email=""))
    )
    assert report.warnings == ()
    customer = session.exec(select(Customer).where(Customer.ref == "C-1001")).one()
    assert (customer.email, customer.id_type, customer.id_number_masked) == (
        None,
        "passport",
        "E*****67",
    )


def test_a_zero_balance_posts_no_entry_and_the_ledger_stays_consistent(session, world, sims):
    run(session, csv_text(row(iccid=sims[0], balance="0.00")))
    assert count(session, JournalEntry) == 0
    assert check(session).ok


def test_a_number_taken_after_the_checks_refuses_the_file(session, world, sims, monkeypatch):
    """The race: the number check passed, then another buyer took the number."""
    real = migration_checks._check_numbers
    calls = []

    def first_check_sees_it_free(*args: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            real(*args)

    monkeypatch.setattr(migration_checks, "_check_numbers", first_check_sees_it_free)
    reserve_number(session, msisdn=msisdn(2), holder="order-9", now=NOW)
    before = snapshot(session)
    error = refused(
        session,
        csv_text(row(iccid=sims[0]), row(customer_ref="C-1002", msisdn=msisdn(2), iccid=sims[1])),
    )
    assert len(calls) == 2
    assert [(p.line, p.field) for p in error.rejects] == [(3, "msisdn")]
    assert snapshot(session) == before
    assert get_number(session, msisdn(1)).status == "available"


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "110105194912310022", "440304199001011235", "440304199001011233"],
)
def test_the_check_digit_shortcut_agrees_with_kyc(number):
    value = normalize_id("cn_ric", number, check_digit=False)
    assert migration_rows._check_digit_ok("cn_ric", value) is id_check_digit_ok("cn_ric", value)


def test_a_ref_created_after_the_checks_refuses_the_file(session, world, sims, monkeypatch):
    """The race on a ref: the database's unique constraint decides, nothing is written."""
    run(session, csv_text(row(iccid=sims[0])))
    real = migration_checks._existing_refs
    calls = []

    def first_check_misses_it(*args: Any) -> dict[str, int]:
        calls.append(1)
        return {} if len(calls) == 1 else real(*args)

    monkeypatch.setattr(migration_checks, "_existing_refs", first_check_misses_it)
    before = snapshot(session)
    error = refused(session, csv_text(row(msisdn=msisdn(2), iccid=sims[1])))
    assert len(calls) == 2
    assert [(p.line, p.field) for p in error.rejects] == [(2, "customer_ref")]
    assert snapshot(session) == before
    assert get_number(session, msisdn(2)).status == "available"


# -- the file as the import kit reads it ------------------------------------------------


def test_every_reject_keeps_its_line_and_raw_text(session, world, sims):
    bad = row(customer_ref="C-1002", msisdn=msisdn(2), iccid=sims[1], email="bad")
    error = refused(session, csv_text(row(iccid=sims[0]), bad, "C-1004,too,few"))
    assert [(p.line, p.raw, p.field) for p in error.rejects] == [
        (3, bad, "email"),
        (4, "C-1004,too,few", None),
    ]
    assert error.rejects[1].code == "column_count"


def test_a_quoted_field_over_two_lines_is_refused_on_both_lines(session, world, sims):
    text = csv_text(row(iccid=sims[0], name='"Zhang\nWei"'), row(customer_ref="C-1002"))
    error = refused(session, text)
    assert [(p.line, p.field) for p in error.rejects[:2]] == [(2, None), (3, None)]
    assert "not a CSV line" in error.rejects[0].reason
    assert error.params["rows"] == 3


def test_a_header_with_a_missing_column_names_it(session, world):
    header = HEADER.replace(",balance", "")
    error = refused(session, f"{header}\nC-1\n")
    [problem] = error.rejects
    assert (problem.line, problem.raw) == (1, header)
    assert "the first line must be the header" in problem.reason
    assert "(missing: balance)" in problem.reason


def test_a_bad_byte_after_a_byte_order_mark_is_named_on_its_line(session, world):
    data = b"\xef\xbb\xbf" + HEADER.encode() + b"\nC-1,\xe9\n"
    [problem] = refused(session, data).rejects
    assert (problem.line, problem.reason) == (2, "not UTF-8 text (byte 0xe9)")


def test_the_file_audit_names_the_sha256_of_the_files_bytes(session, world, sims):
    data = ("\ufeff" + csv_text(row(iccid=sims[0]))).encode("utf-8")
    run(session, data)
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "subscribers.import")).one()
    assert audit.target_id == hashlib.sha256(data).hexdigest()[:16]
