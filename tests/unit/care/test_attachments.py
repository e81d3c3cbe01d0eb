"""Attachments: types by content, sizes, counts, names, and where the files go."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.care import conversation
from app.care.attachments import (
    Upload,
    attachment_path,
    attachments_of,
    check_upload,
    clean_filename,
    get_attachment,
    read_attachment,
    sniff_type,
)
from app.care.errors import AttachmentNotFound, AttachmentRefused
from app.care.models import ATTACHMENT_MAX_BYTES, TicketAttachment, TicketMessage
from tests.unit.care.helpers import MONDAY_10, make_desk, open_complaint

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64
TEXT = "信号很差，见截图。\nSignal is bad.\n".encode()
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (TEXT, "text/plain"),
        (HTML, None),
        (b"  \n<svg onload=alert(1)>", None),
        (b"\xef\xbb\xbf<html>", None),
        (b"hello <script>x</script>", None),
        (b"GIF89a\x01\x00", None),
        (b"PK\x03\x04zip", None),
        (b"\xff\xfe\x00bin", None),
        (b"text with a \x1b escape", None),
    ],
)
def test_the_type_is_read_from_the_content(content, found):
    assert sniff_type(content) == found


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("photo.png", PNG),
        ("PHOTO.JPG", JPEG),
        ("scan.jpeg", JPEG),
        ("bill.pdf", PDF),
        ("notes.txt", TEXT),
    ],
)
def test_allowed_files_pass(name, content):
    checked = check_upload(Upload(name, content))
    assert checked.filename == name and len(checked.sha256) == 64


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("evil.png", HTML, "not a PDF, PNG, JPEG or plain text"),  # HTML renamed .png
        ("evil.html", HTML, "not a PDF"),
        ("page.txt", HTML, "not a PDF"),
        ("photo.png", JPEG, "does not match"),
        ("notes.png", TEXT, "does not match"),
        ("bill", PDF, "does not match"),
        ("image.svg", b"<svg/>", "not a PDF"),
        ("empty.txt", b"", "empty"),
        ("huge.png", PNG + b"\x00" * ATTACHMENT_MAX_BYTES, "larger than 5 MiB"),
    ],
)
def test_bad_files_are_refused(name, content, words):
    with pytest.raises(AttachmentRefused, match=words) as refused:
        check_upload(Upload(name, content))
    assert refused.value.field == "attachments"


def test_a_file_of_exactly_five_mib_is_accepted():
    content = PNG + b"\x00" * (ATTACHMENT_MAX_BYTES - len(PNG))
    assert check_upload(Upload("big.png", content)).content_type == "image/png"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\scan.pdf", "scan.pdf"),
        ("tab\there.txt", "tabhere.txt"),
        ("", "attachment"),
        ("..", "attachment"),
    ],
)
def test_names_lose_folders_and_control_characters(raw, clean):
    assert clean_filename(raw) == clean


def test_attachments_are_kept_by_content_under_the_ticket(session: Session, tmp_path):
    desk = make_desk(session)
    uploads = [Upload("photo.png", PNG), Upload("notes.txt", TEXT), Upload("again.png", PNG)]
    ticket = open_complaint(session, desk, uploads=uploads, storage=tmp_path)
    [message] = session.exec(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id))
    rows = attachments_of(session, ticket_id=ticket.id)[message.id]
    assert [(r.filename, r.content_type) for r in rows] == [
        ("photo.png", "image/png"),
        ("notes.txt", "text/plain"),
        ("again.png", "image/png"),
    ]
    assert sorted(p.name for p in (tmp_path / ticket.ref).iterdir()) == sorted(
        {rows[0].sha256, rows[1].sha256}
    )
    assert attachment_path(tmp_path, ticket.ref, rows[1].sha256).read_bytes() == TEXT
    found = get_attachment(session, ticket_id=ticket.id, attachment_id=rows[0].id)
    assert read_attachment(tmp_path, ticket_ref=ticket.ref, attachment=found) == PNG


def test_six_files_or_one_bad_file_keep_nothing(session: Session, tmp_path):
    desk = make_desk(session)
    ticket = open_complaint(session, desk)
    for uploads in (
        [Upload(f"p{n}.png", PNG) for n in range(6)],
        [Upload("ok.png", PNG), Upload("evil.png", HTML)],
    ):
        with pytest.raises(AttachmentRefused), session.begin_nested():
            conversation.staff_reply(
                session,
                ticket_id=ticket.id,
                body="见附件",
                visibility="customer",
                actor=desk.agent_actor,
                now=MONDAY_10,
                uploads=uploads,
                storage=tmp_path,
            )
    assert session.exec(select(TicketAttachment)).all() == []
    assert not (tmp_path / ticket.ref).exists()


def test_an_attachment_of_another_ticket_is_not_found(session: Session, tmp_path):
    desk = make_desk(session)
    first = open_complaint(session, desk, uploads=[Upload("a.png", PNG)], storage=tmp_path)
    second = open_complaint(session, desk)
    [row] = session.exec(select(TicketAttachment).where(TicketAttachment.ticket_id == first.id))
    with pytest.raises(AttachmentNotFound):
        get_attachment(session, ticket_id=second.id, attachment_id=row.id)
