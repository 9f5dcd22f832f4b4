"""Services: the only code that writes the database. Each checks permissions and writes audit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meetings.audit_trail import AuditTrail
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.services.agenda import AgendaService
from meetings.services.attendance import AttendanceService
from meetings.services.attendance_journal import AttendanceJournal
from meetings.services.audit import AuditService
from meetings.services.auth import AuthService
from meetings.services.calendar import CalendarService
from meetings.services.decisions import DecisionService
from meetings.services.documents import DocumentService
from meetings.services.floor import FloorService
from meetings.services.live import LiveService
from meetings.services.meetings import MeetingService
from meetings.services.minutes import MinutesService
from meetings.services.nodes import NodeService
from meetings.services.notices import NoticeService
from meetings.services.offices import OfficeService
from meetings.services.people import PeopleService
from meetings.services.positions import PositionService
from meetings.services.recordings import RecordingService
from meetings.services.refusals import RefusalLog
from meetings.services.rollcall import RollCallService
from meetings.services.schedule import ScheduleService
from meetings.services.session import SessionService
from meetings.services.votes import VoteService
from meetings.storage import StorageMonitor
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
    decisions: DecisionService
    votes: VoteService
    minutes: MinutesService
    session: SessionService
    floor: FloorService
    attendance: AttendanceService
    roll_calls: RollCallService
    schedule: ScheduleService = field(init=False)
    notices: NoticeService = field(init=False)
    calendar: CalendarService = field(init=False)
    positions: PositionService = field(init=False)
    documents: DocumentService = field(init=False)
    refusals: RefusalLog = field(init=False)
    #: The offices' provincial nodes: registry, revocation and the nodes' authentication.
    nodes: NodeService = field(init=False)
    #: The recording archive's rows, retention, quota and search (the files are recordings/'s).
    recordings: RecordingService = field(init=False)
    #: Disk full, read-only or locked database: /api/health and the console's alarm (meetings/storage.py).
    storage: StorageMonitor = field(init=False)
    #: Attendance the database refused, kept on disk until it is written (None without a data directory).
    attendance_journal: AttendanceJournal | None = field(init=False)

    @classmethod
    def build(cls, db: Database, config: MeetingsConfig, secret_key: str, data_dir: Path | None = None) -> Services:
        """``data_dir`` holds the agenda documents (``documents/``); without it, uploads are refused.

        The audit chain is keyed from ``secret_key``; its checkpoints go to ``audit_checkpoint_dir``, or
        ``audit/`` in ``data_dir``, or (neither given, as in tests) only to the log.
        """
        checkpoint_dir = (Path(config.audit_checkpoint_dir) if config.audit_checkpoint_dir
                          else data_dir / "audit" if data_dir else None)
        db.audit_trail = AuditTrail(secret_key, checkpoint_dir)
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
            decisions=DecisionService(db, meetings),
            votes=VoteService(db, meetings),
            minutes=MinutesService(db, meetings),
            session=SessionService(db, meetings),
            floor=FloorService(db, meetings),
            attendance=AttendanceService(db, meetings),
            roll_calls=RollCallService(db, meetings),
        )
        built.schedule = ScheduleService(db, meetings)
        built.notices = NoticeService(db)
        built.calendar = CalendarService(db, meetings)
        built.positions = PositionService(db, meetings)
        built.documents = DocumentService(db, meetings, data_dir / "documents" if data_dir else None,
                                          config.document_max_bytes)
        built.refusals = RefusalLog(db)
        built.nodes = NodeService(db, built.refusals)
        built.recordings = RecordingService(db, meetings, config)
        database_dir = db.sqlite_path.parent if db.sqlite_path else None
        built.storage = StorageMonitor([p for p in (data_dir, database_dir) if p is not None],
                                       database_dir=database_dir)
        db.observers.append(built.storage.write_outcome)
        built.attendance_journal = AttendanceJournal(data_dir / "journal") if data_dir else None
        built.attendance.journal = built.attendance_journal  # type: ignore[attr-defined]  # signaling/attendance.py
        return built
