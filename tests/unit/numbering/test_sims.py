"""SIM stock: all-or-nothing import, listing and counts (numbering/sim_import.py, sims.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select
from stdnum import luhn

from app.core.audit import AuditEntry
from app.core.errors import InvalidInput
from app.core.fileimport import Reject
from numbering.errors import HostNotFound, SimImportRejected
from numbering.models import Sim
from numbering.sim_import import import_sims
from numbering.sims import count_sims, count_sims_by_status, list_sims
from tests.factories import NOW
from tests.unit.numbering.conftest import STAFF

HEADER = "iccid,imsi,kind,lpa"
EXAMPLE = Path("/work/shared/examples/sims.csv")


def iccid(n: int) -> str:
    """A 19-digit ICCID with a valid Luhn check digit."""
    body = f"898601260000{n:06d}"
    return body + luhn.calc_check_digit(body)


def imsi(n: int) -> str:
    return f"46001900{n:07d}"


def physical(n: int) -> str:
    return f"{iccid(n)},{imsi(n)},physical,"


def esim(n: int) -> str:
    return f"{iccid(n)},{imsi(n)},esim,LPA:1$smdp.example.com$MATCHING-{n:04d}"


def csv_file(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def import_text(session, host, text, filename="sims.csv"):
    return import_sims(session, text=text, filename=filename, host_id=host.id, actor=STAFF, now=NOW)


def sim_count(session):
    return session.exec(select(func.count()).select_from(Sim)).one()


def test_a_good_file_imports_every_sim_in_stock(session, host):
    report = import_text(session, host, csv_file(physical(1), esim(2), physical(3)))

    assert (report.rows, report.imported, report.filename) == (3, 3, "sims.csv")
    sims = list(session.exec(select(Sim).order_by(Sim.id)))
    assert [(s.iccid, s.imsi, s.kind) for s in sims] == [
        (iccid(1), imsi(1), "physical"),
        (iccid(2), imsi(2), "esim"),
        (iccid(3), imsi(3), "physical"),
    ]
    assert [s.lpa for s in sims] == [None, "LPA:1$smdp.example.com$MATCHING-0002", None]
    assert {(s.status, s.host_id, s.created_at, s.status_changed_at) for s in sims} == {
        ("in_stock", host.id, NOW, NOW)
    }


def test_the_shared_example_file_imports(session, host):
    report = import_text(session, host, EXAMPLE.read_text(encoding="utf-8"))
    assert report.imported == 2


def test_an_import_is_audited_once(session, host):
    import_text(session, host, csv_file(physical(1), physical(2)), filename="batch-7.csv")
    entries = list(session.exec(select(AuditEntry).where(AuditEntry.action == "sims.import")))
    assert len(entries) == 1
    assert entries[0].details == {"filename": "batch-7.csv", "count": 2}
    assert entries[0].actor_id == STAFF.id


def test_windows_line_ends_a_bom_and_blank_lines_are_accepted(session, host):
    text = "\ufeff" + HEADER + "\r\n" + physical(1) + "\r\n\r\n" + esim(2) + "\r\n"
    assert import_text(session, host, text).imported == 2


def test_bytes_are_decoded_as_utf8(session, host):
    assert import_text(session, host, csv_file(physical(1)).encode()).imported == 1


def test_values_may_carry_spaces_around_them(session, host):
    import_text(session, host, csv_file(f" {iccid(1)} , {imsi(1)} ,physical, "))
    assert session.exec(select(Sim.iccid)).one() == iccid(1)


BAD_ROWS = [
    pytest.param(
        iccid(9)[:-1] + str((int(iccid(9)[-1]) + 1) % 10) + f",{imsi(9)},physical,",
        "ICCID check digit is wrong (Luhn)",
        id="luhn",
    ),
    pytest.param(
        f"89860126000000001,{imsi(9)},physical,", "ICCID must be 18 to 22 digits", id="iccid-short"
    ),
    pytest.param(
        f"{'8' * 23},{imsi(9)},physical,", "ICCID must be 18 to 22 digits", id="iccid-long"
    ),
    pytest.param(
        f"89860126000000ABC1,{imsi(9)},physical,",
        "ICCID must be 18 to 22 digits",
        id="iccid-letters",
    ),
    pytest.param(
        f"{iccid(9)},46001900000009,physical,", "IMSI must be exactly 15 digits", id="imsi-short"
    ),
    pytest.param(
        f"{iccid(9)},4600190000000099,physical,", "IMSI must be exactly 15 digits", id="imsi-long"
    ),
    pytest.param(
        f"{iccid(9)},46001900000000X,physical,", "IMSI must be exactly 15 digits", id="imsi-letters"
    ),
    pytest.param(f"{iccid(9)},{imsi(9)},nano,", "kind must be physical or esim", id="kind"),
    pytest.param(
        f"{iccid(9)},{imsi(9)},esim,",
        "an eSIM needs its LPA activation code",
        id="esim-without-lpa",
    ),
    pytest.param(
        f"{iccid(9)},{imsi(9)},esim,smdp.example.com$X",
        "must look like LPA:1$",
        id="esim-lpa-prefix",
    ),
    pytest.param(
        f"{iccid(9)},{imsi(9)},esim,LPA:1$", "must look like LPA:1$", id="esim-lpa-no-address"
    ),
    pytest.param(
        f"{iccid(9)},{imsi(9)},physical,LPA:1$smdp.example.com$X",
        "a physical SIM has no LPA activation code",
        id="physical-with-lpa",
    ),
    pytest.param(f"{iccid(9)},{imsi(9)},physical", "expected 4 columns", id="three-columns"),
    pytest.param(f"{iccid(9)},{imsi(9)},physical,,", "found 5", id="five-columns"),
    pytest.param(f'"{iccid(9)},{imsi(9)},physical,', "not a CSV line", id="broken-quote"),
    pytest.param(
        f"{iccid(1)},{imsi(9)},physical,", "ICCID duplicates line 2", id="duplicate-iccid"
    ),
    pytest.param(f"{iccid(9)},{imsi(1)},physical,", "IMSI duplicates line 2", id="duplicate-imsi"),
    pytest.param(f"{iccid(9)},{imsi(9)},physical,\ufffd", "not UTF-8 text", id="replacement-char"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_one_bad_row_refuses_the_whole_file(session, host, row, reason):
    text = csv_file(physical(1), physical(2), row, esim(3))

    with pytest.raises(SimImportRejected) as info:
        import_text(session, host, text)

    assert sim_count(session) == 0
    assert len(info.value.rejects) == 1
    reject = info.value.rejects[0]
    assert (reject.line, reject.raw) == (4, row)
    assert reason in reject.reason
    assert str(info.value) == "1 of 4 rows refused; nothing imported."
    assert isinstance(info.value, InvalidInput)
    assert (info.value.code, info.value.http_status) == ("sim_import_rejected", 422)


def test_every_bad_row_is_reported_with_all_its_reasons(session, host):
    text = csv_file(physical(1), "123,456,nano,", physical(1), physical(5), f"{iccid(6)},x,esim,")
    with pytest.raises(SimImportRejected) as info:
        import_text(session, host, text)
    assert [r.line for r in info.value.rejects] == [3, 4, 6]
    reasons = {r.line: r.reason for r in info.value.rejects}
    assert reasons[3] == (
        "ICCID must be 18 to 22 digits; IMSI must be exactly 15 digits;"
        " kind must be physical or esim"
    )
    assert reasons[4] == "ICCID duplicates line 2; IMSI duplicates line 2"
    assert "IMSI must be exactly 15 digits" in reasons[6]
    assert "an eSIM needs its LPA activation code" in reasons[6]
    assert str(info.value) == "3 of 5 rows refused; nothing imported."
    assert sim_count(session) == 0


def test_sims_already_in_stock_are_refused(session, host):
    import_text(session, host, csv_file(physical(1), esim(2)))
    text = csv_file(
        physical(3),
        f"{iccid(1)},{imsi(7)},physical,",
        f"{iccid(8)},{imsi(2)},esim,LPA:1$smdp.example.com$X",
    )
    with pytest.raises(SimImportRejected) as info:
        import_text(session, host, text)
    assert [(r.line, r.reason) for r in info.value.rejects] == [
        (3, "ICCID already in stock"),
        (4, "IMSI already in stock"),
    ]
    assert sim_count(session) == 2


def test_importing_the_same_file_twice_refuses_the_second_time(session, host):
    text = csv_file(physical(1), esim(2))
    import_text(session, host, text)
    with pytest.raises(SimImportRejected) as info:
        import_text(session, host, text)
    assert [r.reason for r in info.value.rejects] == [
        "ICCID already in stock; IMSI already in stock"
    ] * 2
    assert sim_count(session) == 2


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param("", 1, "the file is empty", id="empty"),
        pytest.param("\n\n", 1, "the file is empty", id="blank-lines"),
        pytest.param(physical(1) + "\n", 1, "must be the header", id="no-header"),
        pytest.param("ICCID,IMSI,KIND,LPA\n" + physical(1), 1, "must be the header", id="caps"),
        pytest.param("iccid,imsi,kind\n" + physical(1), 1, "must be the header", id="short"),
        pytest.param("\n" + csv_file(physical(1)), 1, "must be the header", id="blank-first"),
        pytest.param(HEADER + "\n", 1, "no rows after the header", id="header-only"),
        pytest.param(
            (csv_file(physical(1)) + "8986\xff,1,physical,\n").encode("latin-1"),
            3,
            "not UTF-8 text (byte 0xff)",
            id="latin-1-bytes",
        ),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_reason(session, host, text, line, reason):
    with pytest.raises(SimImportRejected) as info:
        import_text(session, host, text)
    [reject] = info.value.rejects
    assert reject.line == line
    assert reason in reject.reason
    assert "nothing imported" in str(info.value)
    assert sim_count(session) == 0


def test_an_unknown_host_is_refused(session, host):
    with pytest.raises(HostNotFound):
        import_sims(
            session,
            text=csv_file(physical(1)),
            filename="f.csv",
            host_id=999_999,
            actor=STAFF,
            now=NOW,
        )


def test_a_reject_is_a_plain_value():
    assert Reject(2, "raw", "why") == Reject(line=2, raw="raw", reason="why")


# -- listing ----------------------------------------------------------------------------


def test_sims_are_listed_in_import_order_filtered_and_paged(session, host):
    import_text(session, host, csv_file(*(physical(n) for n in range(1, 6)), esim(6), esim(7)))

    everything, total = list_sims(session)
    assert total == 7
    assert [s.iccid for s in everything] == [iccid(n) for n in range(1, 8)]

    esims, total = list_sims(session, kind="esim")
    assert (total, [s.iccid for s in esims]) == (2, [iccid(6), iccid(7)])

    page, total = list_sims(session, kind="physical", page=2, per_page=2)
    assert (total, [s.iccid for s in page]) == (5, [iccid(3), iccid(4)])

    assert list_sims(session, status="active") == ([], 0)


@pytest.mark.parametrize(("name", "value"), [("status", "lost"), ("kind", "micro")])
def test_listing_by_an_unknown_status_or_kind_is_refused(session, name, value):
    with pytest.raises(InvalidInput) as info:
        list_sims(session, **{name: value})
    assert info.value.field == name


def test_sims_are_counted_per_status(session, host):
    assert count_sims_by_status(session) == {
        "in_stock": 0,
        "assigned": 0,
        "active": 0,
        "blocked": 0,
        "retired": 0,
    }
    import_text(session, host, csv_file(physical(1), physical(2), esim(3)))
    sim = session.exec(select(Sim).where(Sim.iccid == iccid(1))).one()
    sim.status = "assigned"
    session.add(sim)
    session.flush()
    counts = count_sims_by_status(session)
    assert (counts["in_stock"], counts["assigned"], counts["active"]) == (2, 1, 0)
    assert {status: count_sims(session, status=status) for status in counts} == counts


def test_an_absurd_sim_page_is_empty_rather_than_an_error(session, host):
    import_text(session, host, csv_file(physical(1)))
    assert list_sims(session, page=10**30) == ([], 1)
