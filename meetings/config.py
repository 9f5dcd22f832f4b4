"""Configuration section ``[meetings]``: database, accounts, sessions and tokens."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

#: Secrets that appear in examples, tutorials and default configs; refused outright.
KNOWN_WEAK_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "password", "cabinet", "development", "dev", "test", "insecure"}
)
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARS = 12


def secret_weakness(value: str) -> str | None:
    """Say why a secret is too weak, or None when it is acceptable. Never echoes the secret."""
    if value.lower() in KNOWN_WEAK_SECRETS:
        return "is a well-known example value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is too short ({len(value)} characters; at least {MIN_SECRET_LENGTH} required)"
    if len(set(value)) < MIN_SECRET_DISTINCT_CHARS:
        return f"has too little variety (fewer than {MIN_SECRET_DISTINCT_CHARS} distinct characters)"
    return None


@dataclass(frozen=True)
class MeetingsConfig:
    #: SQLAlchemy URL. Empty: an SQLite file ``cabinet.db`` in the data directory.
    #: ``postgresql://user:pass@host/db`` selects PostgreSQL (psycopg 3).
    database_url: str = ""
    #: How long a change waits for the database's write lock held by another process (a backup, a
    #: maintenance script) before it is answered "the database is busy; try again".
    database_busy_seconds: int = 30
    #: Apply pending migrations when the server starts.
    auto_migrate: bool = True
    #: Key for signing join tokens and CSRF tokens. Empty: generated once and kept in the data
    #: directory (file ``secret.key``, mode 0600). A configured value must be strong.
    secret_key: str = ""
    #: A logged-in session ends after this many idle minutes...
    session_idle_minutes: int = 30
    #: ...and in any case this many hours after login.
    session_absolute_hours: int = 12
    #: Failed logins for one account from one address within the window before that pair is refused
    #: (a guesser elsewhere cannot lock the chair out before a session)...
    login_max_failures: int = 5
    #: ...failed logins from one address, whatever the accounts...
    login_max_failures_per_address: int = 20
    #: ...and, a slower backstop against guessing from many addresses, failed logins for one account.
    login_max_failures_per_account: int = 100
    login_window_minutes: int = 15
    #: Minimum length of account passwords.
    password_min_length: int = 12
    #: Lifetime of a join token (seconds): it only needs to outlive the connect that follows it.
    join_token_seconds: int = 120
    #: Largest agenda document (PDF) accepted, in bytes.
    document_max_bytes: int = 20 * 1024 * 1024
    #: Directory of the audit checkpoint file (signed heads of the audit chain, one line per change).
    #: Empty: ``audit/`` in the data directory. Better: another disk, or a directory the database's
    #: owner cannot rewrite (an append-only mount, a synced folder).
    audit_checkpoint_dir: str = ""
    #: Retention classes of recordings, ``name=days`` (a bare name: kept with no expiry). "keep" always
    #: exists. A recording due under its class is listed by ``RecordingService.retention_due``.
    recording_retention_classes: list[str] = field(default_factory=lambda: ["keep", "5y=1825"])
    #: The class a new recording gets, per meeting kind (``kind=class``); a kind not listed: "keep".
    recording_retention_by_kind: list[str] = field(
        default_factory=lambda: ["cabinet_session=keep", "briefing=keep"])
    #: Bytes the recording archive may use (0: no quota)...
    recording_quota_bytes: int = 0
    #: ...and the share of it at which the console warns.
    recording_quota_warn_percent: int = 90

    def retention_classes(self) -> dict[str, dt.timedelta | None]:
        """Each retention class and how long it keeps a recording after it closes (None: no expiry)."""
        classes: dict[str, dt.timedelta | None] = {"keep": None}
        for entry in self.recording_retention_classes:
            name, _, days = entry.partition("=")
            classes[name.strip()] = dt.timedelta(days=int(days)) if days.strip() else None
        return classes

    def retention_class_for(self, kind: str) -> str:
        for entry in self.recording_retention_by_kind:
            name, _, value = entry.partition("=")
            if name.strip() == kind:
                return value.strip() or "keep"
        return "keep"

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.secret_key:
            weakness = secret_weakness(self.secret_key)
            if weakness:
                problems.append(("secret_key", weakness))
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql", "postgres")):
            problems.append(("database_url", "must be an sqlite:// or postgresql:// URL"))
        for key in (
            "session_idle_minutes",
            "session_absolute_hours",
            "login_max_failures",
            "login_max_failures_per_address",
            "login_max_failures_per_account",
            "login_window_minutes",
            "join_token_seconds",
            "database_busy_seconds",
        ):
            if getattr(self, key) < 1:
                problems.append((key, "must be at least 1"))
        if self.password_min_length < 8:
            problems.append(("password_min_length", "must be at least 8"))
        if self.join_token_seconds > 3600:
            problems.append(("join_token_seconds", "must be at most 3600 (join tokens are short-lived)"))
        if not 1024 <= self.document_max_bytes <= 1024**3:
            problems.append(("document_max_bytes", "must be between 1024 and 1073741824"))
        problems.extend(self._recording_problems())
        return problems

    def _recording_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        names = {"keep"}
        for entry in self.recording_retention_classes:
            name, sep, days = entry.partition("=")
            if not _RETENTION_NAME.match(name.strip()) or (sep and not re.fullmatch(r"\s*[0-9]{1,6}\s*", days)):
                problems.append(("recording_retention_classes", f"{entry!r} is not name or name=days"))
            names.add(name.strip())
        for entry in self.recording_retention_by_kind:
            kind, _, value = entry.partition("=")
            if kind.strip() not in ("cabinet_session", "briefing") or value.strip() not in names:
                problems.append(("recording_retention_by_kind",
                                 f"{entry!r} is not cabinet_session|briefing=<a retention class>"))
        if self.recording_quota_bytes < 0:
            problems.append(("recording_quota_bytes", "must be 0 (no quota) or more"))
        if not 1 <= self.recording_quota_warn_percent <= 100:
            problems.append(("recording_quota_warn_percent", "must be between 1 and 100"))
        return problems


_RETENTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
