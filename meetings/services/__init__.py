"""Services: the only code that writes the database. Each checks permissions and writes audit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.services.agenda import AgendaService
from meetings.services.audit import AuditService
from meetings.services.auth import AuthService
from meetings.services.calendar import CalendarService
from meetings.services.documents import DocumentService
from meetings.services.live import LiveService
from meetings.services.meetings import MeetingService
from meetings.services.notices import NoticeService
from meetings.services.offices import OfficeService
from meetings.services.people import PeopleService
from meetings.services.positions import PositionService
from meetings.services.schedule import ScheduleService
from meetings.tokens import JoinTokenSigner


@dataclass
class Services:
    db: Database
    auth: AuthService
    people: PeopleService
    offices: OfficeService
    meetings: MeetingService
    audit: AuditService
    agenda: AgendaService
    live: LiveService
    schedule: ScheduleService = field(init=False)
    notices: NoticeService = field(init=False)
    calendar: CalendarService = field(init=False)
    positions: PositionService = field(init=False)
    documents: DocumentService = field(init=False)

    @classmethod
    def build(cls, db: Database, config: MeetingsConfig, secret_key: str, data_dir: Path | None = None) -> Services:
        """``data_dir`` holds the agenda documents (``documents/``); without it, uploads are refused."""
        signer = JoinTokenSigner(secret_key, config.join_token_seconds)
        meetings = MeetingService(db, signer)
        built = cls(
            db=db,
            auth=AuthService(db, config),
            people=PeopleService(db, config),
            offices=OfficeService(db),
            meetings=meetings,
            audit=AuditService(db),
            agenda=AgendaService(db, meetings),
            live=LiveService(db, meetings),
        )
        built.schedule = ScheduleService(db, meetings)
        built.notices = NoticeService(db)
        built.calendar = CalendarService(db, meetings)
        built.positions = PositionService(db, meetings)
        built.documents = DocumentService(db, meetings, data_dir / "documents" if data_dir else None,
                                          config.document_max_bytes)
        return built
