"""PDF documents attached to agenda items, stored under the data directory by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable
from pathlib import Path

from sqlalchemy import func, select

from meetings.db import Database
from meetings.errors import NotFound, ValidationFailed
from meetings.models import AgendaDocument, AgendaItem, Meeting
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService
from meetings.storage import disk_full, is_no_space

PDF_MAGIC = b"%PDF-"
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_UNSAFE = re.compile(r"[^\w .()+,-]", re.UNICODE)


def clean_filename(value: object) -> str:
    name = os.path.basename(str(value or "").replace("\\", "/")).strip()
    name = _UNSAFE.sub("_", name)[:200].strip(" .") or "document"
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"


class TooLarge(ValidationFailed):
    code = "too_large"


class DocumentService:
    def __init__(self, db: Database, meetings: MeetingService, directory: Path | None, max_bytes: int) -> None:
        self.db = db
        self.meetings = meetings
        self.directory = directory
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if self.directory is None:
            raise NotFound("documents are not stored on this server")
        return self.directory / f"{sha256}.pdf"

    async def _item(self, caller: Caller, item_id: int,
                    missing: str = "no such agenda item") -> tuple[Meeting, AgendaItem]:
        """The item and its meeting; one answer, ``missing``, whether the item does not exist or its
        meeting is hidden from the caller (a hidden briefing's items and documents do not leak)."""
        async with self.db.read() as session:
            item = await session.get(AgendaItem, item_id)
        if item is None:
            raise NotFound(missing)
        try:
            meeting = await self.meetings.get(caller, item.meeting_id)
        except NotFound:
            raise NotFound(missing) from None
        return meeting, item

    async def upload(self, caller: Caller, item_id: int, *, filename: object, content_type: object,
                     body: bytes | AsyncIterable[bytes]) -> AgendaDocument:
        """Check type and size while streaming to a temp file, then rename it to ``<sha256>.pdf`` (0600)."""
        meeting, item = await self._item(caller, item_id)
        me = require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        declared = str(content_type or "").split(";")[0].strip().lower()
        if declared not in PDF_TYPES:
            raise ValidationFailed("only PDF documents are accepted (Content-Type application/pdf)",
                                   field="file")
        if self.directory is None:
            raise ValidationFailed("documents are not stored on this server")
        try:
            sha, size = await self._store(body)
        except OSError as exc:
            if not is_no_space(exc):
                raise
            error = disk_full()  # not "internal error": the disk is full, and the console is told
            self.db.observe(error)
            raise error from exc
        name = clean_filename(filename)
        async with self.db.write() as uow:
            document = AgendaDocument(item_id=item.id, filename=name, size_bytes=size, sha256=sha,
                                      content_type="application/pdf",
                                      uploaded_by_id=me.person_id if me else await self.meetings._operator_id(uow))
            uow.session.add(document)
            await uow.session.flush()
            record(uow, caller, "document.upload", target_type="meeting", target_id=meeting.id,
                   details={"document_id": document.id, "item_id": item.id, "filename": name,
                            "size_bytes": size, "sha256": sha})
        return document

    async def _store(self, body: bytes | AsyncIterable[bytes]) -> tuple[str, int]:
        """Stream the body to a temp file, check it, and rename it to ``<sha256>.pdf`` (0600)."""
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                chunks: AsyncIterable[bytes] = _once(body) if isinstance(body, bytes) else body
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"the document is larger than {self.max_bytes // (1024 * 1024)} MiB",
                                       field="file")
                    if len(head) < len(PDF_MAGIC):
                        head += chunk[: len(PDF_MAGIC) - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise ValidationFailed("the file is empty", field="file")
            if head != PDF_MAGIC:
                raise ValidationFailed("the file is not a PDF document", field="file")
            sha = digest.hexdigest()
            final = self.path_for(sha)
            os.chmod(temp, 0o600)
            os.replace(temp, final)  # same content, same name: replacing is harmless
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        return sha, size

    async def list(self, caller: Caller, meeting_id: int) -> dict[int, list[AgendaDocument]]:
        meeting = await self.meetings.get(caller, meeting_id)
        item_ids = [i.id for i in meeting.agenda]
        async with self.db.read() as session:
            rows = (await session.execute(select(AgendaDocument).where(AgendaDocument.item_id.in_(item_ids))
                                          .order_by(AgendaDocument.id))).scalars().all()
        out: dict[int, list[AgendaDocument]] = {i: [] for i in item_ids}
        for row in rows:
            out[row.item_id].append(row)
        return out

    async def get(self, caller: Caller, document_id: int) -> tuple[AgendaDocument, Path]:
        """A document the caller may read (they may view its meeting), and where its bytes are."""
        async with self.db.read() as session:
            document = await session.get(AgendaDocument, document_id)
        if document is None:
            raise NotFound("no such document")
        await self._item(caller, document.item_id, "no such document")
        path = self.path_for(document.sha256)
        if not path.exists():
            raise NotFound("the document's file is missing")
        return document, path

    async def delete(self, caller: Caller, document_id: int) -> None:
        async with self.db.read() as session:
            document = await session.get(AgendaDocument, document_id)
        if document is None:
            raise NotFound("no such document")
        meeting, item = await self._item(caller, document.item_id, "no such document")
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        async with self.db.write() as uow:
            row = await uow.session.get(AgendaDocument, document.id)
            if row is None:
                raise NotFound("no such document")
            await uow.session.delete(row)
            await uow.session.flush()
            others = await uow.session.scalar(select(func.count(AgendaDocument.id)).where(
                AgendaDocument.sha256 == document.sha256))
            record(uow, caller, "document.delete", target_type="meeting", target_id=meeting.id,
                   details={"document_id": document.id, "item_id": item.id, "filename": document.filename,
                            "sha256": document.sha256})
        if not others and self.directory is not None:
            self.path_for(document.sha256).unlink(missing_ok=True)


async def _once(data: bytes):  # type: ignore[no-untyped-def]
    yield data
