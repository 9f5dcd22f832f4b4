"""One connected participant: who they are (from the verified join token) and their media state."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from media import Producer, WebRtcTransport
from meetings.models import Role
from meetings.policy import Action, Caller, decide
from meetings.services.meetings import JoinGrant
from signaling.liveness import Evidence


class Relay(Protocol):
    """What carries a participant who is behind a pipe (a provincial node's person at the centre): the
    room's messages to them, and their removal, go through it."""

    label: str

    def deliver(self, participant: Participant, event: str, data: dict[str, Any]) -> None: ...

    def drop(self, participant: Participant) -> None: ...


def new_participant_id(person_id: int) -> str:
    return f"p{person_id}-{secrets.token_hex(3)}"


@dataclass
class Participant:
    id: str
    sid: str
    grant: JoinGrant
    send: WebRtcTransport | None = None
    recv: WebRtcTransport | None = None
    producers: dict[str, Producer] = field(default_factory=dict)
    address: str = ""
    #: "room" (the meeting page, a bot) or "console" (the secretariat's board): one of each per person.
    client: str = "room"
    audio_muted: bool = False
    video_muted: bool = False
    #: Muted by a moderator: the SFU drops this participant's audio until a moderator unmutes.
    force_muted: bool = False
    hand_raised_at: float | None = None
    in_lobby: bool = False
    quality: dict[str, float | None] = field(default_factory=dict)
    #: The site's choice for what it receives: "auto", "low" or "audio" (signaling/links.py).
    link_mode: str = "auto"
    last_stats_at: float = 0.0
    #: The receiving connection's one offer (its slots) waits for the answer.
    awaiting_answer: bool = False
    #: Media sections of that offer (the answer has exactly as many).
    offered_media: int = 0
    #: The connection's evidence of life (signaling/liveness.py), shared with its socket.io session.
    evidence: Evidence = field(default_factory=Evidence)
    #: A connection that died: its last evidence of life, where its attendance interval ends.
    gone_at: dt.datetime | None = None
    #: Behind a pipe (a provincial node): no socket here; the relay carries what the room sends them.
    via: Relay | None = None
    #: Their pipe is cut: they stay for a grace period (their node keeps them), the pipe's return takes them back.
    reconnecting: bool = False
    #: When they joined, where that is not when they reach this room: a node's person who joined the
    #: node's hall during a WAN cut (their attendance starts then).
    joined_at: dt.datetime | None = None
    #: In a room whose session the host's server runs (a node's share of a centre-hosted session): the
    #: last vote the host sent them, and the choice they cast through the pipe (``vote_state`` answers it).
    host_vote: dict[str, Any] | None = None
    host_vote_choice: str | None = None

    @property
    def person_id(self) -> int:
        return self.grant.principal.person_id

    @property
    def is_chair(self) -> bool:
        return self.grant.principal.has(Role.CHAIR)

    @property
    def may_publish(self) -> bool:
        return decide(self.grant.principal, Action.PUBLISH_MEDIA, self.grant.meeting).allowed

    @property
    def may_moderate(self) -> bool:
        return decide(self.grant.principal, Action.MODERATE_MEETING, self.grant.meeting).allowed

    @property
    def caller(self) -> Caller:
        return Caller(self.grant.principal, self.address)

    def public(self) -> dict[str, Any]:
        """What every other participant sees of this one."""
        principal = self.grant.principal
        return {
            "participant_id": self.id,
            "person_id": principal.person_id,
            "full_name": principal.full_name,
            "office_id": principal.office_id,
            "office_code": self.grant.office_code,
            "office_name": self.grant.office_name_en,
            "office_name_km": self.grant.office_name_km,
            "roles": sorted(r.value for r in principal.roles),
            "audio_muted": self.audio_muted or self.force_muted,
            "force_muted": self.force_muted,
            "video_muted": self.video_muted,
            "hand_raised": self.hand_raised_at is not None,
            "quality": self.quality,
            "client": self.client,
            "via": self.via.label if self.via is not None else None,
            "reconnecting": self.reconnecting,
        }
