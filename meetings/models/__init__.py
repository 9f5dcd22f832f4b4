"""SQLAlchemy 2.0 typed models. Import this package to register every table on ``Base.metadata``."""

from meetings.models.agenda import AgendaDocument, Position, Stance
from meetings.models.audit import AuditEvent, AuditHead
from meetings.models.auth import LoginAttempt, LoginSession
from meetings.models.base import Base
from meetings.models.decisions import Ballot, Choice, Decision, Minutes, MinutesState, Outcome, Vote
from meetings.models.meetings import AgendaItem, Invitation, Meeting, MeetingKind, MeetingState
from meetings.models.nodes import ProvincialNode
from meetings.models.offices import Office, OfficeKind
from meetings.models.people import Person, PersonRole, Role
from meetings.models.recordings import (FileKind, FileMedia, Recording, RecordingFile, RecordingGap, RecordingPause,
                                         RecordingSearch, RecordingState)
from meetings.models.record import AttendanceInterval, ExcusedAbsence, FloorGrant, RollCall, RollCallResponse, Sanction
from meetings.models.schedule import CalendarFeed, MeetingSeries, Notice, SeriesInvitation

__all__ = [
    "AgendaDocument",
    "AgendaItem",
    "AttendanceInterval",
    "AuditEvent",
    "AuditHead",
    "Ballot",
    "Base",
    "CalendarFeed",
    "Choice",
    "Decision",
    "ExcusedAbsence",
    "FileKind",
    "FileMedia",
    "FloorGrant",
    "Invitation",
    "LoginAttempt",
    "LoginSession",
    "Meeting",
    "MeetingKind",
    "MeetingSeries",
    "MeetingState",
    "Minutes",
    "MinutesState",
    "Notice",
    "Office",
    "OfficeKind",
    "Outcome",
    "Person",
    "PersonRole",
    "Position",
    "ProvincialNode",
    "Recording",
    "RecordingFile",
    "RecordingGap",
    "RecordingPause",
    "RecordingSearch",
    "RecordingState",
    "Role",
    "RollCall",
    "RollCallResponse",
    "Sanction",
    "SeriesInvitation",
    "Stance",
    "Vote",
]
