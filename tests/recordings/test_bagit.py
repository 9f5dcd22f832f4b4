"""BagIt (RFC 8493) packages of a recording folder."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from recordings.bagit import validate_bag, write_bag
from recordings.errors import RecordingError


def folder(tmp_path: Path) -> Path:
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / "proceedings.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40)
    (directory / "manifest.json").write_text('{"format": "cabinet-recording/1"}\n')
    (directory / "journal.jsonl").write_text('{"event":"start"}\n')
    return directory


def test_bag_lists_every_file_with_its_sha256_and_validates(tmp_path: Path) -> None:
    directory = folder(tmp_path)
    bag = write_bag(directory, tmp_path / "bag.tar", name="meeting-7-rec",
                    info=[("Source-Organization", "Cabinet secretariat"), ("External-Identifier", "rec\nkey")])
    assert validate_bag(bag) == []
    with tarfile.open(bag) as tar:
        names = set(tar.getnames())
        manifest = tar.extractfile("meeting-7-rec/manifest-sha256.txt").read().decode()  # type: ignore[union-attr]
        info = tar.extractfile("meeting-7-rec/bag-info.txt").read().decode()  # type: ignore[union-attr]
    assert {"meeting-7-rec/bagit.txt", "meeting-7-rec/data/proceedings.webm", "meeting-7-rec/data/manifest.json",
            "meeting-7-rec/tagmanifest-sha256.txt"} <= names
    expected = hashlib.sha256((directory / "proceedings.webm").read_bytes()).hexdigest()
    assert f"{expected}  data/proceedings.webm\n" in manifest
    assert "External-Identifier: rec key\n" in info  # a value never breaks the line format
    size = sum(p.stat().st_size for p in directory.iterdir())
    assert f"Payload-Oxum: {size}.3\n" in info


def test_a_changed_payload_byte_fails_validation(tmp_path: Path) -> None:
    directory = folder(tmp_path)
    bag = write_bag(directory, tmp_path / "bag.tar", name="b", info=[])
    data = bytearray(bag.read_bytes())
    at = data.index(b"\x1a\x45\xdf\xa3") + 100
    data[at] ^= 0xFF
    bag.write_bytes(bytes(data))
    assert validate_bag(bag) == ["manifest-sha256.txt: data/proceedings.webm does not match its SHA-256"]


def test_an_existing_destination_or_empty_folder_is_refused(tmp_path: Path) -> None:
    directory = folder(tmp_path)
    (tmp_path / "bag.tar").write_bytes(b"")
    with pytest.raises(FileExistsError):
        write_bag(directory, tmp_path / "bag.tar", name="b", info=[])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecordingError, match="nothing to pack"):
        write_bag(empty, tmp_path / "other.tar", name="b", info=[])
