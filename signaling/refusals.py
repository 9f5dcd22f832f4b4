"""Refused signaling, counted for the audit trail (meetings.services.refusals.RefusalLog).

Audited: a refused connection (a bad, expired, reused or no longer valid join token: by the person and
meeting the token names when this server signed it, else anonymously by address), and an event a
joined participant may not take (``Forbidden``, or a service's ``PermissionDenied``/``NotFound``). Not
audited: malformed or rate-limited messages, wrong-state answers, and the ``force_muted`` answer to a
muted participant's unmute (a moderation state, not a reach for something protected).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meetings.errors import MeetingsError, NotFound, PermissionDenied
from meetings.policy import Caller
from signaling.errors import Forbidden, SignalingError

if TYPE_CHECKING:
    from meetings.services import Services
    from signaling.namespace import Connection

#: Forbidden codes that are not audited.
NOT_AUDITED = frozenset({"force_muted"})


def note_refused_connect(services: Services, token: object, address: str) -> None:
    claims = services.meetings.signer.signed_claims(token)
    services.refusals.note(
        Caller(None, address), "signaling", target_type="meeting",
        target_id=claims.meeting_id if claims else "", route="connect (token_invalid)",
        actor_id=claims.person_id if claims else None, actor_office_id=claims.office_id if claims else None)


def note_refused_event(services: Services, connection: Connection, event: str,
                       exc: SignalingError | MeetingsError) -> None:
    if isinstance(exc, Forbidden):
        if exc.code in NOT_AUDITED:
            return
    elif not isinstance(exc, (PermissionDenied, NotFound)):
        return
    grant = connection.grant
    services.refusals.note(Caller(grant.principal, connection.address), "signaling", target_type="meeting",
                           target_id=grant.meeting.meeting_id, route=f"{event} ({exc.code})")
