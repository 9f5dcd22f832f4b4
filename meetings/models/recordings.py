"""The recording archive's rows: one Recording per session run (opening to closing, or to a server restart),
its pauses (in-camera items) and its files. The files themselves are recordings/'s; these rows are the
record of what exists, who may see it and how long it is kept. A recording is never deleted: deleting it
removes its files and leaves the row as a tombstone (who, when, why)."""

from __future__ import annotations

import datetime as dt
import enum
import re

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, false)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.meetings import _enum

#: A file name inside a recording's folder: no path separators, no leading surprises.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class RecordingState(enum.StrEnum):
    RECORDING = "recording"
    PAUSED = "paused"  # an in-camera item: nothing is written until resumed
    CLOSED = "closed"  # finalised; manifest_sha256 is set
    FAILED = "failed"  # the recorder gave up (see alarm); files so far are kept
    DELETED = "deleted"  # tombstone: the files are gone, the row stays


#: A recording still being written (at most one per meeting).
ACTIVE_STATES = (RecordingState.RECORDING, RecordingState.PAUSED)


class FileKind(enum.StrEnum):
    TRACK = "track"  # one participant's audio/video
    PROCEEDINGS = "proceedings"  # the mixed or stage view of the session
    MANIFEST = "manifest"  # the SHA-256 manifest of the folder


class FileMedia(enum.StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    AV = "av"


class Recording(Base):
    """One recording of a session, from the session's opening (or the server's restart) to its closing."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("key", name="uq_recordings_key"),
        Index("ix_recordings_meeting_id", "meeting_id"),
        Index("ix_recordings_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: RESTRICT: a recording is a record of state; its meeting cannot disappear under it.
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="RESTRICT"))
    #: Random URL-safe token (never derived from ids): the folder's name under the archive root.
    key: Mapped[str] = mapped_column(String(64))
    state: Mapped[RecordingState] = mapped_column(_enum(RecordingState), default=RecordingState.RECORDING)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it was closed, failed for good or (for a tombstone) when it stopped being written.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Who started it; None: the server itself, as the session opened.
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    #: Hex SHA-256 of the finalised manifest (also in the audit chain's ``recording.close`` event).
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Total bytes of the folder's files (0 once deleted).
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Recorded duration in milliseconds (pauses excluded).
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: A retention class of ``MeetingsConfig.recording_retention_classes`` ("keep": no expiry).
    retention_class: Mapped[str] = mapped_column(String(32), default="keep", server_default="keep")
    #: After this time (and without a legal hold) the recording is due for deletion; None: kept.
    keep_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Neither deleted by hand nor by retention while set.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Tombstone: when, by whom (None: retention, by the server) and why the files were removed.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    delete_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: The recorder's last write error ("disk full"); empty while all is well.
    alarm: Mapped[str] = mapped_column(Text, default="", server_default="")

    pauses: Mapped[list[RecordingPause]] = relationship(
        lazy="selectin", order_by="RecordingPause.started_at", cascade="all, delete-orphan")
    files: Mapped[list[RecordingFile]] = relationship(
        lazy="selectin", order_by="RecordingFile.name", cascade="all, delete-orphan")
    gaps: Mapped[list[RecordingGap]] = relationship(
        lazy="selectin", order_by="RecordingGap.started_at", cascade="all, delete-orphan",
        foreign_keys="RecordingGap.recording_id")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class RecordingPause(Base):
    """The recording was paused (an in-camera item); the manifest lists these intervals."""

    __tablename__ = "recording_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: None while paused.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Who paused (None: the server).
    by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)


class RecordingGap(Base):
    """A site's tracks are missing from a recording for a while: the link of its provincial node was cut.
    The node records its own tracks meanwhile; once its copy has reached the archive and covers the
    interval, ``filled_by_id`` names that copy (the node's recording of the same meeting)."""

    __tablename__ = "recording_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    #: The site whose tracks are missing, and the node whose link was cut.
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("provincial_nodes.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: None while the link is down (and the recording goes on).
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The node's recording that covers the interval, once uploaded; None: not filled (yet).
    filled_by_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), nullable=True)


class RecordingFile(Base):
    """One file of a recording's folder, as the recorder registered it."""

    __tablename__ = "recording_files"
    __table_args__ = (
        UniqueConstraint("recording_id", "name", name="uq_recording_files_recording_name"),
        CheckConstraint("kind IN ('track', 'proceedings', 'manifest')", name="kind"),
        CheckConstraint("media IN ('audio', 'video', 'av')", name="media"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    #: File name inside the folder (``FILE_NAME_RE``).
    name: Mapped[str] = mapped_column(String(100))
    #: track | proceedings | manifest
    kind: Mapped[str] = mapped_column(String(16))
    #: audio | video | av
    media: Mapped[str] = mapped_column(String(8))
    #: Whose track (None: the proceedings or the manifest).
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    #: The site the track came from.
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), nullable=True)
    #: Wall-clock anchors of the first and last media in the file.
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Hex SHA-256 of the finalised file (empty while written).
    sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    #: Frames (video) or packets (audio) written.
    frames: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Media lost at a crash (the tail after the last flush), in milliseconds.
    gap_ms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RecordingSearch(Base):
    """The archive's search document of one meeting: its title, agenda item titles, decision texts, the
    names of its offices and of those who held the floor, rebuilt by ``RecordingService.reindex``.

    Indexed by the database's own full-text search: on PostgreSQL ``tsv`` (a ``tsvector`` of the
    'simple' configuration, GIN-indexed; a plain, unused text column on SQLite); on SQLite an FTS5
    virtual table over ``document`` (external content, kept by the service; see services/recordings.py).
    """

    __tablename__ = "recording_search"
    __table_args__ = (Index("ix_recording_search_tsv", "tsv", postgresql_using="gin"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True,
                                            autoincrement=False)
    document: Mapped[str] = mapped_column(Text, default="", server_default="")
    tsv: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
