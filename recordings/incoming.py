"""A provincial node's recording on its way into the centre's archive: the staging folder of a resumable
upload (web/views/node_uploads.py is its HTTP side, provincial_nodes/upload.py the node's).

A node uploads into ``<archive>/.incoming/<node id>/<key>/``: a hidden folder, so the archive, crash recovery
and retention, which look at ``<archive>/<key>/`` only, never see a half-uploaded recording. What is known of
the upload (the files completed, with their SHA-256 and size; then the seal) is kept beside it in
``<key>.json``, written atomically. A file grows only by appends at exactly its stored size, so the node
resumes after any cut from what the centre holds; :meth:`IncomingUpload.complete` hashes what is stored and
removes it when it differs from the node's SHA-256 (the node then sends that file again from 0).

Sealing holds the completed files to the manifest (each file it lists present, complete, of its size and
SHA-256; nothing else but the journal), writes the intent into the state, and once the caller has filed the
recording's rows, renames the folder to ``<archive>/<key>/`` (one rename on one file system: all or nothing)
and records the seal. A seal cut by a crash is finished by the node's next try; a sealed upload answers
the same again and changes nothing.

Names are never used as a request gave them: a key is a recording's random URL-safe token, a file name one
of the names a recording folder holds (:data:`NAME_RE`); both are checked before a path is made of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_atomically
from .errors import RecordingError, UploadConflict, UploadInvalid
from .journal import JOURNAL_NAME
from .manifest import MANIFEST_NAME, file_sha256, load_manifest

#: The staging area's folder under the archive root (hidden: nothing else in the archive looks into it).
INCOMING_DIR = ".incoming"
#: A recording's key: the random URL-safe token its folder is named by.
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: The files a recording folder holds (recordings/session.py): tracks, the proceedings, journal, manifest.
NAME_RE = re.compile(r"^(?:track-[0-9]{3,6}-(?:audio|video)\.webm|proceedings\.webm|journal\.jsonl|manifest\.json)$")
#: Uploaded beside the media files the manifest lists.
BESIDE_MEDIA = frozenset({MANIFEST_NAME, JOURNAL_NAME})
#: Files one upload may hold (a 50-site session records about a hundred tracks).
MAX_FILES = 1024
#: The largest manifest read (one of a long session with many tracks is a few MiB).
MAX_MANIFEST_BYTES = 16 * 2**20
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: object) -> str:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise UploadInvalid("the key must be 16-64 letters, digits, '_' or '-' (a recording's key)")
    return key


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UploadInvalid("the file name must be track-NNN-audio.webm, track-NNN-video.webm, proceedings.webm, "
                            "journal.jsonl or manifest.json")
    return name


def check_sha256(value: object) -> str:
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise UploadInvalid("sha256 must be 64 lowercase hex digits")
    return value


@dataclass(frozen=True)
class StoredFile:
    """A completed file: what the centre hashed, and its size."""

    sha256: str
    size: int


@dataclass
class UploadState:
    complete: dict[str, StoredFile] = field(default_factory=dict)
    #: The seal under way (meeting id, manifest SHA-256, bytes), written before the rows and the move.
    sealing: dict[str, Any] | None = None
    #: What the upload became: recording id, meeting id, manifest SHA-256, bytes.
    sealed: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "sealing": self.sealing, "sealed": self.sealed,
                "complete": {name: {"sha256": f.sha256, "size": f.size} for name, f in sorted(self.complete.items())}}

    @classmethod
    def from_json(cls, data: Any, where: str) -> UploadState:
        try:
            complete = {check_name(name): StoredFile(check_sha256(entry["sha256"]), int(entry["size"]))
                        for name, entry in data["complete"].items()}
            sealing, sealed = data.get("sealing"), data.get("sealed")
            if not all(value is None or isinstance(value, dict) for value in (sealing, sealed)):
                raise TypeError("sealing and sealed are objects")
        except (KeyError, TypeError, ValueError, AttributeError, UploadInvalid) as exc:
            raise RecordingError(f"{where} is not an upload's state: {exc}") from None
        return cls(complete, sealing, sealed)


@dataclass(frozen=True)
class Sealing:
    """What the staged files say the recording is, once held to its manifest."""

    manifest: dict[str, Any]
    manifest_sha256: str
    #: The media files' bytes (what the archive counts against its quota).
    size_bytes: int




class IncomingUpload:
    """One node's upload of one recording (``source``: the node's id). Not safe for concurrent use: the
    caller holds one lock per upload around every method."""

    def __init__(self, archive_root: Path, source: int, key: object) -> None:
        self.key = check_key(key)
        base = archive_root / INCOMING_DIR / str(int(source))
        self.folder = base / self.key
        self.state_path = base / f"{self.key}.json"
        self.final = archive_root / self.key

    # -- state -------------------------------------------------------------------------------------------

    def load_state(self) -> UploadState:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return UploadState()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RecordingError(f"{self.state_path} is not JSON: {exc}") from None
        return UploadState.from_json(data, str(self.state_path))

    def save_state(self, state: UploadState) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        write_atomically(self.state_path, json.dumps(state.to_json(), sort_keys=True).encode("utf-8") + b"\n")

    # -- files -------------------------------------------------------------------------------------------

    def stored(self, name: str) -> int:
        """Bytes stored of a file so far (0: none); once sealed, the size it was completed with."""
        name = check_name(name)
        state = self.load_state()
        if state.sealed is not None or state.sealing is not None:
            done = state.complete.get(name)
            return done.size if done else 0
        try:
            return (self.folder / name).stat().st_size
        except FileNotFoundError:
            return 0

    def open_for_append(self, name: str, offset: int) -> int:
        """A descriptor to append to ``name`` at ``offset``, which must be the bytes stored (else
        UploadConflict with the stored size). The caller writes and closes it."""
        name = check_name(name)
        state = self.load_state()
        if state.sealed is not None or state.sealing is not None:
            raise UploadConflict("the upload is sealed", offset=self.stored(name))
        done = state.complete.get(name)
        if done is not None:
            raise UploadConflict(f"{name} is complete ({done.size} bytes)", offset=done.size)
        path = self.folder / name
        stored = path.stat().st_size if path.exists() else 0
        if offset != stored:
            raise UploadConflict(f"{name} holds {stored} bytes: append at {stored}, not at {offset}", offset=stored)
        if not path.exists() and self.folder.is_dir() and sum(1 for _ in self.folder.iterdir()) >= MAX_FILES:
            raise UploadConflict(f"an upload holds at most {MAX_FILES} files", offset=0)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def complete(self, name: str, sha256: str) -> StoredFile:
        """The node has sent all of ``name``: hash what is stored (blocking: run it in a thread). Equal to
        ``sha256``: the file is complete. Different: the file is removed (UploadConflict, offset 0)."""
        name, sha256 = check_name(name), check_sha256(sha256)
        state = self.load_state()
        done = state.complete.get(name)
        if done is not None and done.sha256 == sha256:
            return done  # said again (the node did not hear the answer): nothing changes
        if state.sealed is not None or state.sealing is not None:
            raise UploadConflict("the upload is sealed", offset=done.size if done else 0)
        path = self.folder / name
        size = path.stat().st_size if path.exists() else 0
        actual = file_sha256(path) if path.exists() else EMPTY_SHA256
        if actual != sha256:
            path.unlink(missing_ok=True)
            if state.complete.pop(name, None) is not None:
                self.save_state(state)
            raise UploadConflict(f"{name}: the SHA-256 of the {size} bytes stored differs from the node's; the "
                                 "file was removed: send it again from 0", offset=0)
        if not path.exists():  # an empty file, said to be empty
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o750)
            path.touch(mode=0o640)
        done = state.complete[name] = StoredFile(sha256, size)
        self.save_state(state)
        return done

    # -- sealing -------------------------------------------------------------------------------------------

    def begin_seal(self, meeting_id: int) -> Sealing:
        """Hold the completed files to the manifest and write the intent to seal them as a recording of
        ``meeting_id``; or, for a seal a crash cut short, what its intent said."""
        state = self.load_state()
        if state.sealing is not None:
            if state.sealing.get("meeting_id") != meeting_id:
                raise UploadConflict(f"the upload is being sealed as a recording of meeting "
                                     f"{state.sealing.get('meeting_id')}")
            folder = self.folder if self.folder.is_dir() else self.final
            return Sealing(self._manifest(folder), str(state.sealing["manifest_sha256"]),
                           int(state.sealing["size_bytes"]))
        sealing = self._check(state, meeting_id)
        if self.final.exists():
            raise UploadConflict("the archive already holds a recording with this key")
        state.sealing = {"meeting_id": meeting_id, "manifest_sha256": sealing.manifest_sha256,
                         "size_bytes": sealing.size_bytes}
        self.save_state(state)
        return sealing

    def abandon_seal(self) -> None:
        """The rows could not be filed: the upload stays staged, as it was before :meth:`begin_seal`."""
        state = self.load_state()
        if state.sealing is not None and state.sealed is None and self.folder.is_dir():
            state.sealing = None
            self.save_state(state)

    def finish_seal(self, recording_id: int) -> dict[str, Any]:
        """The rows are filed: move the folder into the archive and record the seal."""
        state = self.load_state()
        if state.sealing is None:
            raise UploadConflict("the upload is not being sealed")
        if self.folder.is_dir():
            if self.final.exists():
                raise UploadConflict("the archive already holds a recording with this key")
            os.rename(self.folder, self.final)
        state.sealed = {"recording_id": recording_id, **state.sealing}
        state.sealing = None
        self.save_state(state)
        return state.sealed

    def _manifest(self, folder: Path) -> dict[str, Any]:
        try:
            size = (folder / MANIFEST_NAME).stat().st_size
        except FileNotFoundError:
            raise UploadConflict(f"{MANIFEST_NAME} is missing") from None
        if size > MAX_MANIFEST_BYTES:
            raise UploadInvalid(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            return load_manifest(folder)
        except (ValueError, RecursionError, RecordingError) as exc:
            raise UploadInvalid(f"{MANIFEST_NAME} is not a Cabinet recording manifest: {exc}") from None

    def _check(self, state: UploadState, meeting_id: int) -> Sealing:
        if not self.folder.is_dir():
            raise UploadConflict("nothing was uploaded under this key")
        on_disk = {p.name: p.stat().st_size for p in self.folder.iterdir() if p.is_file()}
        incomplete = sorted(set(on_disk) - set(state.complete))
        if incomplete:
            raise UploadConflict(f"not complete: {', '.join(incomplete[:5])}")
        for name, done in sorted(state.complete.items()):
            if on_disk.get(name) != done.size:
                raise UploadConflict(f"{name} changed or vanished since it was completed")
        if MANIFEST_NAME not in state.complete:
            raise UploadConflict(f"{MANIFEST_NAME} is missing")
        manifest = self._manifest(self.folder)
        recording = manifest.get("recording")
        said = recording.get("meeting_id") if isinstance(recording, dict) else None
        if isinstance(said, int) and not isinstance(said, bool) and said != meeting_id:
            raise UploadInvalid(f"the manifest is of meeting {said}, not {meeting_id}")
        files = manifest.get("files")
        if not isinstance(files, list):
            raise UploadInvalid(f"{MANIFEST_NAME} has no list of files")
        listed: set[str] = set()
        size = 0
        for entry in files:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in BESIDE_MEDIA:
                raise UploadInvalid(f"{MANIFEST_NAME} lists a file that is not a recording's media file: {name!r}")
            if name in listed:
                raise UploadInvalid(f"{MANIFEST_NAME} lists {name} twice")
            listed.add(name)
            done = state.complete.get(name)
            if not entry.get("present"):
                if done is not None:
                    raise UploadConflict(f"{name} was uploaded, but the manifest says it was never written")
                continue
            if done is None:
                raise UploadConflict(f"{name} is missing")
            if entry.get("size") != done.size:
                raise UploadConflict(f"{name}: size {done.size} differs from the manifest's {entry.get('size')}")
            if entry.get("sha256") != done.sha256:
                raise UploadConflict(f"{name}: SHA-256 differs from the manifest")
            size += done.size
        extra = sorted(set(state.complete) - listed - BESIDE_MEDIA)
        if extra:
            raise UploadConflict(f"not in the manifest: {', '.join(extra[:5])}")
        return Sealing(manifest, state.complete[MANIFEST_NAME].sha256, size)
