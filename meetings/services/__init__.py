"""Services: the only code that writes the database. Each checks permissions and writes audit events."""

from __future__ import annotations

from dataclasses import dataclass

from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.services.agenda import AgendaService
from meetings.services.attendance import AttendanceService
from meetings.services.floor import FloorService
from meetings.services.rollcall import RollCallService
from meetings.services.session import SessionService
from meetings.services.audit import AuditService
from meetings.services.auth import AuthService
from meetings.services.decisions import DecisionService
from meetings.services.live import LiveService
from meetings.services.meetings import MeetingService
from meetings.services.minutes import MinutesService
from meetings.services.offices import OfficeService
from meetings.services.people import PeopleService
from meetings.services.votes import VoteService
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

    @classmethod
    def build(cls, db: Database, config: MeetingsConfig, secret_key: str) -> Services:
        signer = JoinTokenSigner(secret_key, config.join_token_seconds)
        meetings = MeetingService(db, signer)
        return cls(
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
