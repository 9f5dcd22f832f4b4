"""What was negotiated for one m-line, reduced to what forwarding needs."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
)

from .errors import UnsupportedError
from .rewriter import ExtensionIds


@dataclass(frozen=True)
class StreamParameters:
    kind: str
    mid: str
    #: The media codec, with this connection's payload type.
    codec: RTCRtpCodecParameters
    rtx_payload_type: int | None
    ext_ids: ExtensionIds
    nack: bool
    pli: bool
    #: The peer negotiated ``goog-remb``: its REMB feedback is an estimate to honour.
    remb: bool = False
    #: RED (RFC 2198) for this Opus m-line, when negotiated: its payload type.
    red_payload_type: int | None = None

    @property
    def payload_type(self) -> int:
        return int(self.codec.payloadType or 0)

    @property
    def clock_rate(self) -> int:
        return self.codec.clockRate

    @property
    def codec_name(self) -> str:
        return self.codec.name

    @classmethod
    def from_negotiated(
        cls,
        *,
        kind: str,
        mid: str,
        codecs: list[RTCRtpCodecParameters],
        extensions: list[RTCRtpHeaderExtensionParameters],
    ) -> StreamParameters:
        media = [c for c in codecs if c.name.lower() not in ("rtx", "red")]
        red = next((c.payloadType for c in codecs if c.name.lower() == "red"), None)
        if not media:
            raise UnsupportedError(f"m-line {mid} negotiated no media codec")
        codec = media[0]
        rtx = next(
            (
                c.payloadType
                for c in codecs
                if c.name.lower() == "rtx" and c.parameters.get("apt") == codec.payloadType
            ),
            None,
        )
        feedback = {(fb.type, fb.parameter) for fb in codec.rtcpFeedback}
        return cls(
            kind=kind,
            mid=mid,
            codec=codec,
            rtx_payload_type=rtx,
            ext_ids=ExtensionIds.from_uris([(e.id, e.uri) for e in extensions]),
            nack=("nack", None) in feedback,
            pli=("nack", "pli") in feedback,
            remb=("goog-remb", None) in feedback,
            red_payload_type=red if kind == "audio" else None,
        )
