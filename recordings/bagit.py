"""Hand-over packages for a national archive: BagIt 1.0 (RFC 8493) with SHA-256 manifests.

A recording's folder becomes one bag, written as an uncompressed tar (the media is compressed
already) whose top directory is the bag::

    <name>/bagit.txt                  BagIt-Version 1.0, UTF-8
    <name>/bag-info.txt               Source-Organization, Bagging-Date, Payload-Oxum, External-Identifier,
                                      Cabinet-Manifest-SHA256 (the seal kept in the audit chain), ...
    <name>/manifest-sha256.txt        one line per payload file: hex digest, two spaces, data/<file>
    <name>/tagmanifest-sha256.txt     the same for the three tag files above
    <name>/data/...                   the recording's media files, manifest.json and journal.jsonl

Payload digests are computed from the files as they are packed (never copied from the manifest),
so a file that changed since the recording closed shows up as a mismatch against manifest.json
when the bag is validated (:func:`validate_bag`), not as a silently re-sealed bag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

from .errors import RecordingError

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
_CHUNK = 1 << 20


def _payload_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.endswith(".tmp"))


def _info_line(key: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        value = " ".join(value.split())
    return f"{key}: {value}\n"


def write_bag(directory: Path, destination: Path, *, name: str, info: Iterable[tuple[str, str]]) -> Path:
    """Pack ``directory`` as a BagIt bag into the tar file ``destination`` (created; not replaced)."""
    files = _payload_files(directory)
    if not files:
        raise RecordingError(f"{directory.name}: nothing to pack")
    manifest_lines: list[str] = []
    octets = 0
    with tarfile.open(destination, "x", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            digest = hashlib.sha256()
            size = path.stat().st_size
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
            with open(path, "rb") as f:
                member = tarfile.TarInfo(f"{name}/data/{path.name}")
                member.size = size
                member.mtime = int(path.stat().st_mtime)
                member.mode = 0o644
                tar.addfile(member, f)
            manifest_lines.append(f"{digest.hexdigest()}  data/{path.name}\n")
            octets += size
        bag_info = "".join(_info_line(k, v) for k, v in (
            *info,
            ("Bagging-Date", dt.date.today().isoformat()),
            ("Payload-Oxum", f"{octets}.{len(files)}"),
        )).encode("utf-8")
        tags = {"bagit.txt": BAGIT_TXT, "bag-info.txt": bag_info,
                "manifest-sha256.txt": "".join(manifest_lines).encode("utf-8")}
        tags["tagmanifest-sha256.txt"] = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {tag}\n" for tag, data in tags.items()).encode("utf-8")
        for tag, data in tags.items():
            member = tarfile.TarInfo(f"{name}/{tag}")
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    return destination


def validate_bag(tar_path: Path) -> list[str]:
    """Problems of a bag written by :func:`write_bag` (every digest, the Payload-Oxum, completeness).
    Empty: valid."""
    problems: list[str] = []
    with tarfile.open(tar_path, "r") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        roots = {n.split("/", 1)[0] for n in members}
        if len(roots) != 1:
            return ["the bag must have exactly one top directory"]
        root = roots.pop()

        def read(name: str) -> bytes:
            extracted = tar.extractfile(members[f"{root}/{name}"])
            assert extracted is not None
            return extracted.read()

        for required in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"):
            if f"{root}/{required}" not in members:
                problems.append(f"{required} is missing")
        if problems:
            return problems
        if read("bagit.txt") != BAGIT_TXT:
            problems.append("bagit.txt is not a BagIt 1.0 declaration")
        for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
            listed: set[str] = set()
            for line in read(manifest).decode("utf-8").splitlines():
                digest, _, path = line.partition("  ")
                listed.add(path)
                if f"{root}/{path}" not in members:
                    problems.append(f"{manifest}: {path} is missing")
                elif hashlib.sha256(read(path)).hexdigest() != digest:
                    problems.append(f"{manifest}: {path} does not match its SHA-256")
            if manifest == "manifest-sha256.txt":
                payload = {n[len(root) + 1:] for n in members if n.startswith(f"{root}/data/")}
                problems += [f"{p} is not in manifest-sha256.txt" for p in sorted(payload - listed)]
                info = dict(line.split(": ", 1) for line in read("bag-info.txt").decode("utf-8").splitlines()
                            if ": " in line)
                oxum = f"{sum(members[f'{root}/{p}'].size for p in payload)}.{len(payload)}"
                if info.get("Payload-Oxum") != oxum:
                    problems.append(f"Payload-Oxum {info.get('Payload-Oxum')} differs from the payload ({oxum})")
    return problems
