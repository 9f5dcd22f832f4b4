"""Login, logout, session resolution and login throttling."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update

from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.errors import LoginFailed, LoginThrottled
from meetings.models import LoginAttempt, LoginSession, Person
from meetings.models.base import utcnow
from meetings.passwords import hash_password, needs_rehash, verify_password
from meetings.policy import Caller, Principal
from meetings.services.common import principal_of, record
from meetings.tokens import new_session_token, token_digest

log = logging.getLogger("meetings.auth")

#: last_seen_at is written at most this often per session, not on every request.
TOUCH_INTERVAL = dt.timedelta(seconds=60)
GENERIC_FAILURE = "wrong username or password"


@dataclass(frozen=True)
class LoginResult:
    token: str
    principal: Principal


#: Throttled (account, address) pairs remembered for audit aggregation, at most (oldest dropped first).
MAX_THROTTLED_PAIRS = 10_000


class AuthService:
    def __init__(self, db: Database, config: MeetingsConfig) -> None:
        self.db = db
        self.config = config
        #: (account, address) -> end of the throttled period already written to the audit trail.
        self._throttle_audited: dict[tuple[str, str], dt.datetime] = {}

    def _first_throttled(self, name: str, address: str, now: dt.datetime, retry_after: int) -> bool:
        """True once per throttled period of an (account, address) pair: the attempts that follow within
        the period are counted in the log, not each written to the audit trail."""
        key = (name, address)
        until = self._throttle_audited.get(key)
        if until is not None and now < until:
            return False
        self._throttle_audited.pop(key, None)
        while len(self._throttle_audited) >= MAX_THROTTLED_PAIRS:
            self._throttle_audited.pop(next(iter(self._throttle_audited)))
        self._throttle_audited[key] = now + dt.timedelta(seconds=retry_after)
        return True

    @property
    def idle_timeout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.config.session_idle_minutes)

    @property
    def absolute_timeout(self) -> dt.timedelta:
        return dt.timedelta(hours=self.config.session_absolute_hours)

    async def _throttle_retry_after(self, username: str, address: str, now: dt.datetime) -> int | None:
        """Seconds to wait, or None. Three counts of failures within the window: the account from this
        address (``login_max_failures``), this address for any account (``login_max_failures_per_address``),
        and the account from anywhere, a slower backstop (``login_max_failures_per_account``); the
        account's counts start again after its last successful login. A guesser elsewhere cannot lock the
        chair out before a session, as the usual guidance against online guessing recommends."""
        window = dt.timedelta(minutes=self.config.login_window_minutes)
        since = now - window
        async with self.db.read() as session:
            last_success = await session.scalar(
                select(func.max(LoginAttempt.at)).where(
                    LoginAttempt.username == username, LoginAttempt.succeeded.is_(True)
                )
            )
            user_since = max(since, last_success) if last_success else since
            rows = (await session.execute(
                select(LoginAttempt.at, LoginAttempt.username, LoginAttempt.address).where(
                    LoginAttempt.succeeded.is_(False), LoginAttempt.at > since,
                    (LoginAttempt.username == username) | (LoginAttempt.address == address),
                ).order_by(LoginAttempt.at)
            )).all()
        account = [at for at, name, _ in rows if name == username and at > user_since]
        pair = [at for at, name, addr in rows if name == username and addr == address and at > user_since]
        from_address = [at for at, _, addr in rows if addr == address]
        waits = [times[-limit] + window - now for times, limit in (
            (pair, self.config.login_max_failures),
            (from_address, self.config.login_max_failures_per_address),
            (account, self.config.login_max_failures_per_account),
        ) if len(times) >= limit]
        if not waits:
            return None
        return max(1, int(max(waits).total_seconds()) + 1)

    async def login(self, username: str, password: str, caller: Caller, user_agent: str = "") -> LoginResult:
        name = (username or "").strip().lower()[:64]
        address = caller.address[:64]
        now = utcnow()
        retry_after = await self._throttle_retry_after(name, address, now)
        if retry_after is not None:
            if self._first_throttled(name, address, now, retry_after):
                async with self.db.write() as uow:
                    record(uow, caller, "auth.login.throttled", target_type="username", target_id=name,
                           details={"retry_after_seconds": retry_after,
                                    "note": "later attempts of this period are not audited one by one"})
            else:
                log.info("login throttled", extra={"event": "auth.login.throttled", "address": address})
            raise LoginThrottled("too many failed logins; try again later", retry_after)

        async with self.db.read() as session:
            person = await session.scalar(select(Person).where(Person.username == name))
        stored_hash = person.password_hash if person is not None else None
        ok = await asyncio.to_thread(verify_password, stored_hash, password or "")
        if person is None or not ok or not person.active:
            reason = "unknown_user" if person is None else ("wrong_password" if not ok else "disabled")
            async with self.db.write() as uow:
                uow.session.add(LoginAttempt(username=name, address=address, at=now, succeeded=False))
                uow.audit("auth.login.failure", actor_id=person.id if person else None,
                          actor_office_id=person.office_id if person else None, address=address,
                          target_type="username", target_id=name, details={"reason": reason})
            raise LoginFailed(GENERIC_FAILURE)

        new_hash = await asyncio.to_thread(hash_password, password) if needs_rehash(person.password_hash) else None
        token = new_session_token()
        async with self.db.write() as uow:
            uow.session.add(LoginAttempt(username=name, address=address, at=now, succeeded=True))
            uow.session.add(LoginSession(token_hash=token_digest(token), person_id=person.id, created_at=now,
                                         last_seen_at=now, address=address, user_agent=user_agent[:300]))
            if new_hash:
                await uow.session.execute(update(Person).where(Person.id == person.id).values(password_hash=new_hash))
            uow.audit("auth.login.success", actor_id=person.id, actor_office_id=person.office_id,
                      address=address, target_type="person", target_id=person.id)
        return LoginResult(token=token, principal=principal_of(person))

    async def resolve(self, token: str | None) -> Principal | None:
        """The principal behind a session cookie, or None if it is unknown, ended, idle or too old."""
        if not token or len(token) > 128:
            return None
        digest = token_digest(token)
        now = utcnow()
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(LoginSession, Person)
                    .join(Person, Person.id == LoginSession.person_id)
                    .where(LoginSession.token_hash == digest, LoginSession.ended_at.is_(None))
                )
            ).one_or_none()
        if row is None:
            return None
        login_session, person = row
        end_reason = None
        if not person.active:
            end_reason = "disabled"
        elif now - login_session.created_at > self.absolute_timeout:
            end_reason = "expired"
        elif now - login_session.last_seen_at > self.idle_timeout:
            end_reason = "idle"
        if end_reason:
            await self._end(digest, end_reason)
            return None
        if now - login_session.last_seen_at > TOUCH_INTERVAL:
            async with self.db.write() as uow:
                await uow.session.execute(
                    update(LoginSession).where(LoginSession.id == login_session.id).values(last_seen_at=now)
                )
        return principal_of(person)

    async def _end(self, digest: str, reason: str) -> int:
        async with self.db.write() as uow:
            result = await uow.session.execute(
                update(LoginSession)
                .where(LoginSession.token_hash == digest, LoginSession.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason=reason)
            )
        return int(result.rowcount or 0)

    async def logout(self, token: str | None, caller: Caller) -> None:
        if not token:
            return
        digest = token_digest(token)
        async with self.db.write() as uow:
            result = await uow.session.execute(
                update(LoginSession)
                .where(LoginSession.token_hash == digest, LoginSession.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason="logout")
            )
            if result.rowcount:
                record(uow, caller, "auth.logout", target_type="person", target_id=caller.actor_id or "")
