"""requirements.lock agrees with pyproject.toml, is fully hashed, and is what this environment runs.

scripts/setup.sh installs exactly the lock (``pip install --require-hashes``); `make lock` refreshes it.
A dependency added or re-ranged in pyproject.toml without `make lock` fails here.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, list[tuple[Version, Marker | None, int]]]:
    """name -> [(version, marker, number of hashes)] (a name may appear once per marker)."""
    entries: dict[str, list[tuple[Version, Marker | None, int]]] = {}
    current: list[object] | None = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = ENTRY.match(line)
        if match:
            name, version, marker = match.groups()
            current = [Version(version), Marker(marker) if marker else None, 0]
            entries.setdefault(canonicalize_name(name), []).append(current)  # type: ignore[arg-type]
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            assert re.fullmatch(r"\s*--hash=sha256:[0-9a-f]{64}( \\)?", line), line
            current[2] += 1  # type: ignore[operator]
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected line in requirements.lock: {line!r}")
    return {name: [tuple(e) for e in versions] for name, versions in entries.items()}  # type: ignore[misc]


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = (project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
             + project["build-system"]["requires"])
    return [Requirement(text) for text in texts]


def applies(marker: Marker | None, python: str) -> bool:
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix"}
    return marker is None or marker.evaluate(env)


def test_every_declared_requirement_is_locked_within_its_range() -> None:
    lock = locked()
    problems = []
    for python in ("3.11", "3.12"):
        for requirement in declared():
            name = canonicalize_name(requirement.name)
            versions = [v for v, marker, _ in lock.get(name, []) if applies(marker, python)]
            if len(versions) != 1:
                problems.append(f"{requirement.name}: {len(versions)} locked versions for Python {python}")
            elif not requirement.specifier.contains(versions[0], prereleases=True):
                problems.append(f"{requirement.name}: locked {versions[0]} is outside pyproject's "
                                f"'{requirement.specifier}'")
    assert not problems, "pyproject.toml and requirements.lock disagree (run `make lock`):\n" + "\n".join(problems)


def test_every_locked_package_has_hashes() -> None:
    missing = [name for name, versions in locked().items() for _, _, hashes in versions if hashes == 0]
    assert not missing


def test_this_environment_runs_the_locked_versions() -> None:
    """What scripts/setup.sh installed is the lock, version for version (the lock is in use)."""
    python = "%d.%d" % sys.version_info[:2]
    wrong = []
    for name, versions in locked().items():
        for version, marker, _ in versions:
            if not applies(marker, python):
                continue
            try:
                installed = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                wrong.append(f"{name}: not installed (locked {version})")
                continue
            if installed != version:
                wrong.append(f"{name}: installed {installed}, locked {version}")
    assert not wrong, "\n".join(wrong)


def test_npm_lock_pins_every_package_with_integrity() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    manifest = json.loads((ROOT / "package.json").read_text())
    packages = lock["packages"]
    for name, wanted in manifest["dependencies"].items():
        assert packages[f"node_modules/{name}"]["version"] == wanted  # exact versions in package.json
    for path, entry in packages.items():
        if path:
            assert entry.get("integrity", "").startswith("sha512-"), path
