"""Ticket attachments: what is accepted, where it is kept, how it is read back.

Rules:

* **Types by content.** A file is a PDF, a PNG, a JPEG or plain text by its
  first bytes (`%PDF-`, the PNG signature, `FF D8 FF`), or plain text when
  it is UTF-8 without control characters (tabs and line ends aside) and
  without markup — never by the name or type the uploader gave. The name's
  extension must agree with the content (`.pdf`, `.png`, `.jpg`/`.jpeg`,
  `.txt`), so an HTML page renamed `.png` is refused, and so is any text
  that opens like HTML, XML or SVG under any name.
* **Limits.** 1 byte to 5 MiB each, at most 5 per message. Every file of a
  message is checked before any is kept: a refusal keeps nothing.
* **Storage.** `<instance>/attachments/<ticket ref>/<sha256>`, written
  through a temporary file and a rename; the same content twice on one
  ticket is one file. A file written for a message whose transaction then
  rolls back stays behind unreferenced (content-addressed, harmless).
* **Downloads** are the web layer's: always as an attachment with the type
  found here and `X-Content-Type-Options: nosniff`, never as a page.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from app.care.errors import AttachmentNotFound, AttachmentRefused
from app.care.models import ATTACHMENT_MAX_BYTES, ATTACHMENTS_PER_MESSAGE, TicketAttachment
from app.core.errors import N_

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain",
}
# Text that opens like markup a browser could render.
MARKUP_OPENINGS = ("<", "\ufeff<")
MARKUP_WORDS = ("<html", "<script", "<svg", "<!doctype", "<iframe", "<body")
TEXT_CONTROLS = frozenset("\t\n\r\f")


@dataclass(frozen=True)
class Upload:
    """A file as received: the name the uploader gave and its bytes."""

    filename: str
    content: bytes


@dataclass(frozen=True)
class CheckedUpload:
    filename: str
    content_type: str
    content: bytes
    sha256: str


def _is_plain_text(content: bytes) -> bool:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if any((ord(ch) < 32 and ch not in TEXT_CONTROLS) or ord(ch) == 127 for ch in text):
        return False
    head = text.lstrip(" \t\r\n\f").lower()
    return not head.startswith(MARKUP_OPENINGS) and not any(w in head for w in MARKUP_WORDS)


def sniff_type(content: bytes) -> str | None:
    """The allowed type the bytes show, or None (not one of PDF, PNG, JPEG, plain text)."""
    for signature, content_type in SIGNATURES:
        if content.startswith(signature):
            return content_type
    return "text/plain" if _is_plain_text(content) else None


def clean_filename(raw: str) -> str:
    """The name without folders or control characters, at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().strip(".")
    return name[-255:] or "attachment"


def check_upload(upload: Upload) -> CheckedUpload:
    """One file checked against the size, type and name rules.

    :raises AttachmentRefused: empty, too large, a type not allowed, or a
        name whose extension disagrees with the content.
    """
    name = clean_filename(upload.filename)
    size = len(upload.content)
    if size == 0:
        raise AttachmentRefused(N_("%(name)s is empty."), field="attachments", name=name)
    if size > ATTACHMENT_MAX_BYTES:
        raise AttachmentRefused(
            N_("%(name)s is larger than %(limit)s MiB."),
            field="attachments",
            name=name,
            limit=ATTACHMENT_MAX_BYTES // (1024 * 1024),
        )
    found = sniff_type(upload.content)
    if found is None:
        raise AttachmentRefused(
            N_("%(name)s is not a PDF, PNG, JPEG or plain text file."),
            field="attachments",
            name=name,
        )
    claimed = EXTENSIONS.get(Path(name).suffix.lower())
    if claimed != found:
        raise AttachmentRefused(
            N_("The content of %(name)s does not match its name (.pdf, .png, .jpg or .txt)."),
            field="attachments",
            name=name,
        )
    digest = hashlib.sha256(upload.content).hexdigest()
    return CheckedUpload(name, found, upload.content, digest)


def check_uploads(uploads: Sequence[Upload]) -> list[CheckedUpload]:
    """Every file of one message checked (`check_upload`), and their number.

    :raises AttachmentRefused: more than five files, or any file refused.
    """
    if len(uploads) > ATTACHMENTS_PER_MESSAGE:
        raise AttachmentRefused(
            N_("At most %(count)s files can be attached to one message."),
            field="attachments",
            count=ATTACHMENTS_PER_MESSAGE,
        )
    return [check_upload(upload) for upload in uploads]


def attachment_path(storage: Path, ticket_ref: str, sha256: str) -> Path:
    """Where the content with this digest of this ticket is kept."""
    assert ticket_ref and "/" not in ticket_ref and ".." not in ticket_ref, ticket_ref
    assert len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256), sha256
    return storage / ticket_ref / sha256


def _write(path: Path, content: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store_attachments(
    session: Session,
    *,
    ticket_id: int,
    ticket_ref: str,
    message_id: int,
    files: Sequence[CheckedUpload],
    storage: Path,
    now: datetime,
) -> list[TicketAttachment]:
    """Keep checked files on disk and record them as attachments of a message."""
    rows = []
    for checked in files:
        _write(attachment_path(storage, ticket_ref, checked.sha256), checked.content)
        row = TicketAttachment(
            ticket_id=ticket_id,
            message_id=message_id,
            filename=checked.filename,
            content_type=checked.content_type,
            size_bytes=len(checked.content),
            sha256=checked.sha256,
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def attachments_of(session: Session, *, ticket_id: int) -> dict[int, list[TicketAttachment]]:
    """A ticket's attachments by message id, in the order they were added."""
    found: dict[int, list[TicketAttachment]] = {}
    query = (
        select(TicketAttachment)
        .where(TicketAttachment.ticket_id == ticket_id)
        .order_by(col(TicketAttachment.id))
    )
    for row in session.exec(query):
        found.setdefault(row.message_id, []).append(row)
    return found


def get_attachment(session: Session, *, ticket_id: int, attachment_id: int) -> TicketAttachment:
    """An attachment of this ticket. :raises AttachmentNotFound: none, or another ticket's."""
    row = session.get(TicketAttachment, attachment_id)
    if row is None or row.ticket_id != ticket_id:
        raise AttachmentNotFound(N_("No attachment %(id)s on this ticket."), id=attachment_id)
    return row


def read_attachment(storage: Path, *, ticket_ref: str, attachment: TicketAttachment) -> bytes:
    """The kept bytes of an attachment. :raises AttachmentNotFound: the file is gone."""
    path = attachment_path(storage, ticket_ref, attachment.sha256)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AttachmentNotFound(
            N_("The file of attachment %(id)s is missing."), id=attachment.id
        ) from None
