"""Signaling target: one socket.io EVENT from a connected client, and the connect auth's join token.

python-socketio hands the namespace whatever JSON the client sent: ``[event, *args]`` with any JSON
values (the event need not even be a string). The input drives the real
``MeetingNamespace.trigger_event`` (rate limit, event check, schema validation of every event, the
acknowledgement), with the handlers behind it replaced by a recorder: the room logic is not the
parser. Documented answers: an ack ``{"ok": false, "error": {"code": ...}}`` for anything refused.
A defect: trigger_event raising, an ``internal`` ack (the catch-all for an unexpected exception, logged
with a traceback), an ack that is not JSON, or a handler receiving a payload its schema would refuse.
The join token (``auth.token`` at connect) goes through JoinTokenSigner.verify: TokenInvalid only.

Input: JSON text of the socket.io event array (the seeds are real messages), or, when the bytes are
not such JSON, a structure decoded from the bytes by :class:`Reader` (known events and field names,
boundary numbers, NaN/Infinity, surrogates, deep nesting).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from types import SimpleNamespace
from typing import Any

from fuzz import check
from meetings.errors import TokenInvalid
from meetings.tokens import JoinTokenSigner
from signaling.config import SignalingConfig
from signaling.namespace import Connection, MeetingNamespace
from signaling.protocol import CLIENT_EVENTS, schemas
from signaling.ratelimit import FloodRule


_CONFIG = SignalingConfig()
_SCHEMAS = schemas(_CONFIG.max_message_bytes)
_EVENTS = sorted(CLIENT_EVENTS)
_FIELDS = sorted({name for schema in _SCHEMAS.values() for name in (*schema.required, *schema.optional)} | {"token"})
_WORDS = ["audio", "video", "send", "recv", "yes", "no", "abstain", "open", "close", "grant", "revoke", "yield",
          "start", "answer", "mute", "unmute", "remove", "admit", "lock", "room", "console", "p-1.a:b_c", "",
          " ", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "connect", "disconnect", "__proto__", "\ud800",
          "x" * 65, "ü" * 3]
_NUMBERS: list[Any] = [0, 1, -1, 2, 63, 64, 65, 2**31, 2**31 + 1, 2**53, 2**63, -(2**63), 10**30, 4 * 3600,
                       4 * 3600 + 1, 60_000, 0.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf")]
_SIGNER = JoinTokenSigner("fuzz-secret", 3600)
_LOOP = asyncio.new_event_loop()
logging.getLogger("signaling").setLevel(logging.CRITICAL)  # the catch-all's traceback is the finding here


class Reader:
    """Decodes bytes into JSON-like values (each byte a choice); past the end, every choice is 0."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, options: list[Any]) -> Any:
        return options[self.byte() % len(options)]

    def text(self) -> str:
        kind = self.byte() % 4
        if kind == 0:
            return self.pick(_WORDS)  # type: ignore[no-any-return]
        if kind == 1:
            return self.pick(_EVENTS)  # type: ignore[no-any-return]
        if kind == 2:
            return self.pick(_FIELDS)  # type: ignore[no-any-return]
        size = self.byte() % 48
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8", "surrogateescape")

    def value(self, depth: int = 0) -> Any:
        kind = self.byte() % 10 if depth < 8 else self.byte() % 5
        if kind == 0:
            return None
        if kind == 1:
            return bool(self.byte() & 1)
        if kind == 2:
            return self.pick(_NUMBERS)
        if kind == 3:
            return int.from_bytes(bytes(self.byte() for _ in range(4)), "big", signed=True)
        if kind == 4:
            return self.text()
        if kind in (5, 6):
            return {self.pick(_FIELDS) if self.byte() % 4 else self.text(): self.value(depth + 1)
                    for _ in range(self.byte() % 5)}
        if kind == 7:
            return [self.value(depth + 1) for _ in range(self.byte() % 4)]
        if kind == 8:  # deep nesting, up to what json.loads (socket.io's decoder) still accepts
            depth_wanted = self.byte() * 4 + self.byte() % 4
            inner: Any = self.value(8)
            for _ in range(depth_wanted):
                inner = [inner] if self.byte() % 2 else {self.pick(_FIELDS): inner}
            return inner
        return {name: self.value(depth + 1) for name in self.pick(list(_SCHEMAS.values())).required}


def decode(data: bytes) -> list[Any]:
    """The event array: JSON text if it is a non-empty JSON array, else the Reader's structure."""
    try:
        value = json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, list) and value:
        return value
    reader = Reader(data)
    selector = reader.byte()
    event = reader.pick(_EVENTS) if selector < 200 else reader.value() if selector < 230 else reader.text()
    count = 1 if reader.byte() < 200 else reader.byte() % 5
    return [event, *(reader.value() for _ in range(count))]


class FuzzNamespace(MeetingNamespace):
    """The real namespace; its session store and its handlers (the room logic) are stand-ins."""

    connection: Connection
    delivered: tuple[str, Any] | None = None

    async def _connection(self, sid: str) -> Connection | None:
        return self.connection


def _recorder(event: str) -> Any:
    async def handle(self: FuzzNamespace, sid: str, connection: Connection, payload: Any) -> dict[str, Any]:
        self.delivered = (event, payload)
        return {}

    return handle


for _event in CLIENT_EVENTS:
    setattr(FuzzNamespace, f"handle_{_event}", _recorder(_event))

_SERVICES = SimpleNamespace(refusals=SimpleNamespace(note=lambda *args, **kwargs: None))
_NAMESPACE = FuzzNamespace(SimpleNamespace(schemas=_SCHEMAS, config=_CONFIG, services=_SERVICES,
                                           spawn_disconnect=lambda sid: None))
_NAMESPACE.server = SimpleNamespace(manager=SimpleNamespace(is_connected=lambda sid, namespace: True))
_GRANT = SimpleNamespace(principal=SimpleNamespace(person_id=1), meeting=SimpleNamespace(meeting_id=1))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b  # type: ignore[no-any-return]


def _show(value: Any) -> str:
    try:
        return repr(value)[:200]
    except RecursionError:
        return "<nested too deep to show>"


def one_input(data: bytes) -> None:
    message = decode(data)
    event, args = message[0], message[1:]
    _NAMESPACE.connection = Connection(grant=_GRANT, flood=FloodRule(1e9, 10**9, 10**9), address="fuzz")  # type: ignore[arg-type]
    _NAMESPACE.delivered = None
    ack = _LOOP.run_until_complete(_NAMESPACE.trigger_event(event, "sid", *args))
    check(isinstance(ack, dict) and isinstance(ack.get("ok"), bool), f"ack is not an answer: {_show(ack)}")
    try:
        json.dumps(ack)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"ack is not JSON ({exc}): {_show(ack)}") from None
    if not ack["ok"]:
        code = ack.get("error", {}).get("code")
        check(code != "internal", f"event {_show(event)[:40]} with {_show(args)}: an unexpected exception (internal ack)")
        check(_NAMESPACE.delivered is None, "a refused message reached its handler")
    else:
        check(_NAMESPACE.delivered is not None, "an accepted message never reached its handler")
        name, payload = _NAMESPACE.delivered  # type: ignore[misc]
        check(name == event and isinstance(payload, dict), "the handler got another event or a non-object")
        again = _SCHEMAS[name].validate(name, payload, _CONFIG.max_message_bytes)
        check(again.keys() == payload.keys() and all(_same(again[k], payload[k]) for k in payload),
              f"{name}: the validated payload does not validate to itself")
    # The connect packet's auth: {"token": ...}; anything else is no token.
    auth = args[0] if args else None
    try:
        _SIGNER.verify(auth.get("token") if isinstance(auth, dict) else None)
    except TokenInvalid:
        pass
    else:
        raise AssertionError("an unsigned join token verified")
