"""Where a bot gets its join tokens: one per (re)connection, since tokens are single-use and short-lived.

* :class:`StaticToken`: a token given on the command line (``--token``); good for one connection only,
  so a bot holding one cannot reconnect (``refreshable`` is False).
* :class:`bots.login.LoginTokenSource`: logs in once (``--username``/``--password-stdin``/``--meeting``),
  keeps the HTTP session (cookie jar and CSRF token) and mints a new token for every attempt, as the
  web page does with its session cookie; it logs in again when the login session has ended.
* :class:`CallableTokenSource`: any ``async () -> str`` (tests mint tokens with the server's services).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .errors import ReconnectImpossible

#: Why a bare token cannot be used to reconnect, as the report and ``--help`` say it.
SINGLE_USE = (
    "a --token join token is single-use, so the bot cannot get another one to reconnect; "
    "log in with --username, --password-stdin and --meeting to let it reconnect"
)


class TokenSource:
    """Gives a fresh join token per call (:meth:`token`); ``refreshable``: more than one."""

    refreshable: bool = True

    async def token(self) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the source holds (an HTTP session); it may not be used afterwards."""


class StaticToken(TokenSource):
    """One token, given once: a second call raises :class:`ReconnectImpossible`."""

    refreshable = False

    def __init__(self, token: str) -> None:
        self._token: str | None = token

    async def token(self) -> str:
        if not self._token:
            raise ReconnectImpossible(SINGLE_USE)
        token, self._token = self._token, None
        return token


class CallableTokenSource(TokenSource):
    """Tokens from ``mint()``, e.g. ``lambda: live_server.join_token("governor")`` in tests."""

    def __init__(self, mint: Callable[[], Awaitable[str]]) -> None:
        self._mint = mint

    async def token(self) -> str:
        return await self._mint()
