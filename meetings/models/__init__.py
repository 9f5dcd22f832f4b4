"""SQLAlchemy 2.0 typed models. Import this package to register every table on ``Base.metadata``."""

from meetings.models.audit import AuditEvent, AuditHead
from meetings.models.auth import LoginAttempt, LoginSession
from meetings.models.base import Base
from meetings.models.meetings import AgendaItem, Invitation, Meeting, MeetingKind, MeetingState
from meetings.models.offices import Office, OfficeKind
from meetings.models.people import Person, PersonRole, Role

__all__ = [
    "AgendaItem",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Invitation",
    "LoginAttempt",
    "LoginSession",
    "Meeting",
    "MeetingKind",
    "MeetingState",
    "Office",
    "OfficeKind",
    "Person",
    "PersonRole",
    "Role",
]
