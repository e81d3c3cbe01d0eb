"""Mediation (DESIGN §7): counts, duplicates, every reject reason, refusals, reprocessing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from app.charging.models import ArrearsSuspension
from app.core.fileimport import FileRejected
from app.ledger.balances import customer_balance
from app.payments.services import MoneyPolicy, record_offline_payment
from app.usage.models import UsageFile, UsageRecord, UsageReject
from app.usage.rejects import list_rejects, reprocess_rejects
from numbering.blocks import add_number_block
from tests.unit.subscribers.helpers import STAFF, World, make_world
from tests.unit.usage.helpers import ACTOR, IMPORT_NOW, T0, at, cdr_text, import_rows, subject
from tests.unit.wholesale.helpers import make_host, make_rate_card
from wholesale.usage_settings import set_usage_settings

POLICY = MoneyPolicy(currency="CNY", cap_months=24, reference_monthly_minor=5000)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def reasons(session: Session) -> dict[int, str]:
    rows = session.exec(select(UsageReject).order_by(col(UsageReject.line_no))).all()
    return {r.line_no: r.reason for r in rows}


def test_every_reason_is_kept_with_line_and_raw_text(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    path = tmp_path / "mixed.csv"
    text = "\n".join(
        [
            "record_id,msisdn,service,start_time,quantity,called_number",
            f"OK1,{s.msisdn},sms,{at(1).isoformat()},1,",  # 2
            f",{s.msisdn},sms,{at(1).isoformat()},1,",  # 3 no record id
            f"N1,12345,sms,{at(1).isoformat()},1,",  # 4 bad number
            f"N2,{s.msisdn},fax,{at(1).isoformat()},1,",  # 5 unknown service
            f"N3,{s.msisdn},sms,{at(1).isoformat()},-1,",  # 6 negative
            f"N4,{s.msisdn},data,{at(1).isoformat()},1.5,",  # 7 not whole
            f"N5,{s.msisdn},sms,2026-10-01T09:00:00,1,",  # 8 no offset
            f"N6,{s.msisdn},sms,yesterday,1,",  # 9 bad time
            f"N7,+8613800138000,sms,{at(1).isoformat()},1,",  # 10 not our number
            f"N8,{s.msisdn},sms,2026-09-01T00:00:00+00:00,1,",  # 11 before the first period
            f"N9,{s.msisdn},sms",  # 12 too few fields
            "",  # 13 blank: not a row
            f"OK1,{s.msisdn},sms,{at(1).isoformat()},1,",  # 14 duplicate in the file
            f"OK2,{s.msisdn},voice,{at(2).isoformat()},30,+8613800138000",  # 15
        ]
    )
    path.write_text(text + "\n", encoding="utf-8")
    from app.usage.importer import import_usage_file

    result = import_usage_file(session, host_code="HOSTA", path=path, actor=ACTOR, now=IMPORT_NOW)
    assert result.as_dict() == {
        "file": "mixed.csv",
        "rows": 13,
        "charged": 2,
        "duplicates": 1,
        "rejected": 10,
        "already_imported": False,
    }
    assert (
        reasons(session)
        == {
            3: "bad_record_id",
            4: "bad_number",
            5: "unknown_service",
            6: "bad_quantity",
            7: "bad_quantity",
            8: "bad_time",
            9: "bad_time",
            10: "unknown_msisdn",
            11: "no_active_line",
            12: "column_count",
        }
        | {}
    )  # the two others are charged
    raw = session.exec(select(UsageReject.raw).where(UsageReject.line_no == 12)).one()
    assert raw == f"N9,{s.msisdn},sms"
    assert count(session, UsageRecord) == 2
    assert record_called(session, "OK2") == "+8613800138000"


def record_called(session: Session, record_id: str) -> str | None:
    return session.exec(
        select(UsageRecord.called_number).where(UsageRecord.record_id == record_id)
    ).one()


def test_the_same_file_again_is_a_no_op(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world, balance=1000)
    path = tmp_path / "once.csv"
    path.write_text(cdr_text([("A", s.msisdn, "sms", at(1), 5)]), encoding="utf-8")
    from app.usage.importer import import_usage_file

    first = import_usage_file(session, host_code="HOSTA", path=path, actor=ACTOR, now=IMPORT_NOW)
    balance = customer_balance(session, customer_id=world.customer.id or 0)
    again = import_usage_file(session, host_code="HOSTA", path=path, actor=ACTOR, now=IMPORT_NOW)
    assert again.already_imported and not first.already_imported
    assert again.file_id == first.file_id
    assert (again.rows, again.charged) == (1, 1)
    assert count(session, UsageFile) == 1 and count(session, UsageRecord) == 1
    assert customer_balance(session, customer_id=world.customer.id or 0) == balance


def test_a_record_seen_in_an_earlier_file_is_a_duplicate(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=1000)
    import_rows(session, tmp_path, [("A", s.msisdn, "sms", at(1), 3)])
    # the same record id, even with other values, is not charged again
    second = import_rows(
        session, tmp_path, [("A", s.msisdn, "sms", at(7), 9), ("B", s.msisdn, "sms", at(8), 1)]
    )
    assert (second.charged, second.duplicates, second.rejected) == (1, 1, 0)
    assert customer_balance(session, customer_id=world.customer.id or 0) == 1000 - 10 - 10


def test_record_ids_and_numbers_are_per_host(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    other = make_host(session, code="HOSTB")
    make_rate_card(session, host=other)
    add_number_block(
        session,
        host_id=other.id or 0,
        first="+8617099990000",
        last="+8617099990009",
        actor=STAFF,
        now=T0,
    )
    import_rows(session, tmp_path, [("A", s.msisdn, "sms", at(1), 1)])
    # the same record id from another host is not a duplicate (its number has no line: a reject)
    result = import_rows(
        session, tmp_path, [("A", "+8617099990001", "sms", at(1), 1)], host="HOSTB"
    )
    assert (result.duplicates, result.rejected) == (0, 1)
    assert reasons(session) == {2: "no_active_line"}
    # a number held from another host is unknown to this one
    cross = import_rows(session, tmp_path, [("X", "+8617099990001", "sms", at(1), 1)])
    assert cross.rejected == 1
    reject = session.exec(select(UsageReject).where(UsageReject.record_id == "X")).one()
    assert reject.reason == "unknown_msisdn"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"record_id,msisdn,service,start_time,quantity\n", "no rows"),
        (b"id,number,kind,when,amount\nA,+8617012340000,sms,x,1\n", "header"),
        (b"record_id,msisdn,service,start_time,quantity\n\xff\xfe,1,2,3,4\n", "UTF-8"),
        (
            b'record_id,msisdn,service,start_time,quantity\n"A,+86170,sms\nB,x,sms,x,1\n',
            "quoted",
        ),
    ],
)
def test_a_file_that_cannot_be_read_changes_nothing(
    session: Session, world: World, tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    from app.usage.importer import import_usage_file

    with pytest.raises(FileRejected) as refused:
        import_usage_file(session, host_code="HOSTA", path=path, actor=ACTOR, now=IMPORT_NOW)
    assert needle in refused.value.message
    assert count(session, UsageFile) == 0 and count(session, UsageReject) == 0


def test_a_host_column_mapping(session: Session, world: World, tmp_path: Path) -> None:
    s = subject(session, world)
    set_usage_settings(
        session,
        host_id=world.host.id or 0,
        cdr_columns={"record_id": "CDR_ID", "msisdn": "A_NUMBER", "ignore": ["CELL"]},
        amount_tolerance_minor=0,
        quantity_tolerance_bp=0,
        actor=STAFF,
        now=IMPORT_NOW,
    )
    header = "CELL,A_NUMBER,CDR_ID,service,start_time,quantity"
    path = tmp_path / "mapped.csv"
    path.write_text(f"{header}\nc7,{s.msisdn},X1,sms,{at(1).isoformat()},1\n", encoding="utf-8")
    from app.usage.importer import import_usage_file

    result = import_usage_file(session, host_code="HOSTA", path=path, actor=ACTOR, now=IMPORT_NOW)
    assert (result.charged, result.rejected) == (1, 0)
    default = tmp_path / "default.csv"
    default.write_text(cdr_text([("X2", s.msisdn, "sms", at(2), 1)]), encoding="utf-8")
    with pytest.raises(FileRejected, match="CDR_ID"):
        import_usage_file(session, host_code="HOSTA", path=default, actor=ACTOR, now=IMPORT_NOW)


def test_reprocessing_charges_once_the_cause_is_fixed(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=1000)
    early = s.period.start.replace(day=1, month=9)
    result = import_rows(
        session,
        tmp_path,
        [("OK", s.msisdn, "sms", at(1), 1), ("LATE", s.msisdn, "sms", early, 3)],
    )
    assert result.rejected == 1
    # the cause: the line had a period in September the platform had not recorded
    from app.charging.periods import open_period

    open_period(session, line=s.line, plan=s.plan, start=early, end=s.period.start, now=early)
    first = reprocess_rejects(session, host_code="HOSTA", actor=ACTOR, now=IMPORT_NOW)
    assert (first.tried, first.charged, first.still_rejected) == (1, 1, 0)
    again = reprocess_rejects(session, host_code="HOSTA", actor=ACTOR, now=IMPORT_NOW)
    assert again.tried == 0
    rejects, total = list_rejects(session, host_id=world.host.id, status="resolved")
    assert total == 1 and rejects[0].resolved_file_id == first.file_id
    assert count(session, UsageRecord) == 2
    # 3 SMS in the September period: 2 within, 1 over (10 fen)
    assert customer_balance(session, customer_id=world.customer.id or 0) == 990


def test_reprocessing_a_reject_whose_record_came_meanwhile_is_a_duplicate(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world)
    import_rows(session, tmp_path, [("R", "+8613800138000", "sms", at(1), 1)])
    import_rows(session, tmp_path, [("R", s.msisdn, "sms", at(1), 1)])
    result = reprocess_rejects(session, host_code="HOSTA", actor=ACTOR, now=IMPORT_NOW)
    # the id was charged meanwhile: resolved as a duplicate, not charged again
    assert (result.tried, result.charged, result.duplicates, result.still_rejected) == (1, 0, 1, 0)
    assert count(session, UsageRecord) == 1
    assert list_rejects(session, status="open")[1] == 0


def test_a_credit_clears_arrears_first_then_resumes(
    session: Session, world: World, tmp_path: Path
) -> None:
    s = subject(session, world, balance=0)
    import_rows(session, tmp_path, [("S", s.msisdn, "sms", at(1), 12)])  # 10 over: 100 fen
    customer_id = world.customer.id or 0
    assert customer_balance(session, customer_id=customer_id) == -100

    def pay(amount: int, reference: str) -> None:
        record_offline_payment(
            session,
            customer_id=customer_id,
            amount_minor=amount,
            method="cash",
            reference=reference,
            actor=STAFF,
            now=IMPORT_NOW,
            policy=POLICY,
        )

    pay(60, "R-1")  # not enough: still in arrears, still suspended
    session.refresh(s.line)
    assert s.line.status == "suspended"
    pay(50, "R-2")
    session.refresh(s.line)
    assert s.line.status == "active"
    assert customer_balance(session, customer_id=customer_id) == 10
    suspension = session.exec(select(ArrearsSuspension)).one()
    assert suspension.resumed_at == IMPORT_NOW
