"""Cookies, CSRF tokens, client addresses and security headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from aiohttp import web

from meetings.tokens import derive_key, token_digest
from web.config import WebConfig

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class CookieNames:
    session: str
    pre_session: str


class Security:
    """Everything the web layer needs to know to set and check cookies and CSRF tokens."""

    def __init__(self, config: WebConfig, secret_key: str, *, tls: bool) -> None:
        self.config = config
        self.tls = tls
        self._csrf_key = derive_key(secret_key, "csrf")
        # The __Host- prefix pins a cookie to this origin (needs Secure, Path=/ and no Domain).
        prefix = "__Host-" if tls else ""
        self.cookies = CookieNames(session=f"{prefix}cabinet_session", pre_session=f"{prefix}cabinet_pre")
        self._trusted = {ipaddress.ip_address(p) for p in config.trusted_proxies}

    # -- CSRF -------------------------------------------------------------------------------------
    def csrf_token(self, binding: str) -> str:
        """A token bound to the session (or pre-session) cookie: useless to anyone without the cookie."""
        return hmac.new(self._csrf_key, token_digest(binding).encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, binding: str | None, presented: str | None) -> bool:
        if not binding or not presented or len(presented) != 64:
            return False
        return hmac.compare_digest(self.csrf_token(binding), presented)

    @staticmethod
    def new_pre_session() -> str:
        return secrets.token_urlsafe(24)

    # -- cookies ----------------------------------------------------------------------------------
    def set_cookie(self, response: web.StreamResponse, name: str, value: str, *, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                            secure=self.tls)

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.tls, samesite="Lax")

    # -- addresses --------------------------------------------------------------------------------
    def client_address(self, request: web.Request) -> str:
        remote = request.remote or ""
        try:
            peer = ipaddress.ip_address(remote)
        except ValueError:
            return remote[:64]
        if peer in self._trusted:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            for hop in reversed(hops):
                try:
                    address = ipaddress.ip_address(hop)
                except ValueError:
                    break
                if address not in self._trusted:
                    return str(address)
        return str(peer)

    def origin_ok(self, request: web.Request) -> bool:
        """Refuse cross-site writes outright when the browser tells us where they come from."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        expected = f"{'https' if self.tls else request.scheme}://{request.host}"
        return origin == expected


#: The only inline script, on the pages that run module scripts (room, console); allowed by its hash.
#: A page whose module scripts did not all arrive never starts, and the browser does not fetch a failed
#: module again within the page: Chromium, for one, aborts every request in flight with
#: ERR_NETWORK_CHANGED when an address is added to or removed from any interface of the machine (a VPN
#: coming up, a Wi-Fi change, a test lab's TUN devices). Rather than a page that looks ready and does
#: nothing, reload it (at most three times in a row for one path; the count resets once it has loaded).
SCRIPT_GUARD_JS = (
    "(function () {"
    " var key = 'cabinet.script-reloads:' + location.pathname, failed = false;"
    " window.addEventListener('error', function (event) {"
    " var node = event.target;"
    " if (failed || !node || node.tagName !== 'SCRIPT') { return; }"
    " failed = true;"
    " var count;"
    " try { count = parseInt(sessionStorage.getItem(key) || '0', 10) || 0;"
    " sessionStorage.setItem(key, String(count + 1)); } catch (e) { return; }"
    " if (count >= 3) { return; }"
    " console.warn('a script of this page did not load; reloading it');"
    " setTimeout(function () { location.reload(); }, 300 * (count + 1));"
    " }, true);"
    " window.addEventListener('load', function () {"
    " if (!failed) { try { sessionStorage.removeItem(key); } catch (e) { } } });"
    " })();"
)
SCRIPT_GUARD_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT_GUARD_JS.encode()).digest()).decode()

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
    "Content-Security-Policy": (
        f"default-src 'self'; script-src 'self' '{SCRIPT_GUARD_HASH}'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
}
