"""Validation of every client message: shape, types, sizes and SDP content."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from media.site_budget import SlotView
from signaling.errors import InvalidMessage

MAX_SDP_LINES = 4000
#: Media sections in a publisher's offer: a camera and a microphone, with room for a shared screen and
#: its sound. Each m-line costs the server a transceiver and its share of every negotiation.
MAX_PUBLISH_MEDIA = 4
#: aiortc's SDP parser matches every a=rtcp-fb and a=fmtp line against every a=rtpmap of its media section,
#: and looks every a=ssrc line up among the SSRCs listed before it: costs quadratic in a section's lines,
#: paid on the event loop. Within 4000 lines they held it for 4.8 s (1900 a=rtpmap x 1900 a=rtcp-fb:*) and
#: 120 ms (3800 a=ssrc) per message (tests/test_loop_budget.py). A Chromium video section has ~33 codecs x
#: ~117 feedback and parameter lines (~3900 pairs) and at most 24 a=ssrc lines (simulcast with RTX).
MAX_CODEC_PAIRS = 16384  # sum over media sections of a=rtpmap lines x (a=rtcp-fb + a=fmtp lines)
MAX_SSRC_LINES = 64  # a=ssrc lines per media section
#: One SDP line: no control characters, and none of the other characters str.splitlines() breaks a line at
#: (\x85, \u2028, \u2029): aiortc splits the SDP with splitlines(), so such a character would open a line,
#: an m-line even, that this check and media_count never saw.
SDP_LINE = re.compile(r"^[a-z]=[^\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]*$")
Check = Callable[[str, Any], Any]


def media_count(sdp_text: str) -> int:
    """Number of media sections (m= lines) of an SDP, without parsing it."""
    return sdp_text.startswith("m=") + sdp_text.count("\nm=")


def sdp(max_bytes: int, max_media: int | None = None) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidMessage(f"{name} must be an SDP string")
        if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
            raise InvalidMessage(f"{name} is larger than {max_bytes} bytes")
        lines = value.replace("\r\n", "\n").rstrip("\n").split("\n")
        if not lines or lines[0] != "v=0":
            raise InvalidMessage(f"{name} must start with v=0")
        if len(lines) > MAX_SDP_LINES:
            raise InvalidMessage(f"{name} has more than {MAX_SDP_LINES} lines")
        codecs = feedback = ssrcs = pairs = 0
        for number, line in enumerate(lines, 1):
            if not SDP_LINE.match(line):
                raise InvalidMessage(f"{name} line {number} is not an SDP line")
            if line.startswith("m="):
                pairs += codecs * feedback
                codecs = feedback = ssrcs = 0
            elif line.startswith("a=rtpmap:"):
                codecs += 1
            elif line.startswith(("a=rtcp-fb:", "a=fmtp:")):
                feedback += 1
            elif line.startswith("a=ssrc:"):
                ssrcs += 1
                if ssrcs > MAX_SSRC_LINES:
                    raise InvalidMessage(f"{name} has more than {MAX_SSRC_LINES} a=ssrc lines in a media section")
        pairs += codecs * feedback
        if pairs > MAX_CODEC_PAIRS:
            raise InvalidMessage(f"{name} has {pairs} pairs of codec (a=rtpmap) and feedback or parameter "
                                 f"(a=rtcp-fb, a=fmtp) lines in its media sections; at most {MAX_CODEC_PAIRS}")
        media = media_count(value)
        if not media:
            raise InvalidMessage(f"{name} has no media section")
        if max_media is not None and media > max_media:
            raise InvalidMessage(f"{name} has {media} media sections; at most {max_media} are accepted")
        return value

    return check


def integer(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidMessage(f"{name} must be an integer between {low} and {high}")
        return value

    return check


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise InvalidMessage(f"{name} must be a number between {low:g} and {high:g}")
        return float(value)

    return check


def identifier(max_length: int = 64) -> Check:
    pattern = re.compile(r"^[A-Za-z0-9_.:-]{1,%d}$" % max_length)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise InvalidMessage(f"{name} must be an identifier")
        return value

    return check


def nullable(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidMessage(f"{name} must be true or false")
    return value


def one_of(*options: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise InvalidMessage(f"{name} must be one of {', '.join(options)}")
        return str(value)

    return check


def slot_views(max_slots: int) -> Check:
    """``{slot_id: {visible: bool, width?: int, height?: int}}`` (CSS pixels, 0..10000) as SlotViews."""
    slot_id = identifier(32)
    pixels = integer(0, 10_000)

    def check(name: str, value: Any) -> dict[str, SlotView]:
        if not isinstance(value, dict):
            raise InvalidMessage(f"{name} must be an object of slot ids")
        if len(value) > max_slots:
            raise InvalidMessage(f"{name} names more than {max_slots} slots")
        out: dict[str, SlotView] = {}
        for key, view in value.items():
            slot_id(f"{name} key", key)
            if not isinstance(view, dict) or "visible" not in view or set(view) - {"visible", "width", "height"}:
                raise InvalidMessage(f"{name}.{key} must be {{visible, width?, height?}}")
            out[key] = SlotView(visible=boolean(f"{name}.{key}.visible", view["visible"]),
                                width=pixels(f"{name}.{key}.width", view.get("width", 0)),
                                height=pixels(f"{name}.{key}.height", view.get("height", 0)))
        return out

    return check


class Schema:
    """Required and optional fields of one event's payload; unknown fields are refused."""

    def __init__(self, required: dict[str, Check] | None = None, optional: dict[str, Check] | None = None) -> None:
        self.required = required or {}
        self.optional = optional or {}

    def validate(self, event: str, data: Any, max_bytes: int) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidMessage(f"{event}: the payload must be an object")
        try:
            size = len(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError, RecursionError):  # RecursionError: nested deeper than json.dumps goes
            raise InvalidMessage(f"{event}: the payload is not plain JSON") from None
        if size > max_bytes:
            raise InvalidMessage(f"{event}: the payload is larger than {max_bytes} bytes")
        unknown = set(data) - set(self.required) - set(self.optional)
        if unknown:
            raise InvalidMessage(f"{event}: unknown field(s) {', '.join(sorted(map(str, unknown)))[:200]}")
        out: dict[str, Any] = {}
        for name, check in self.required.items():
            if name not in data:
                raise InvalidMessage(f"{event}: {name} is required")
            out[name] = check(name, data[name])
        for name, check in self.optional.items():
            if name in data:
                out[name] = check(name, data[name])
        return out
