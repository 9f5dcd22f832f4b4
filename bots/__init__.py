"""Cabinet test bots: aiortc clients for tests, benchmarks and operators testing a site's link.

A bot joins with a join token (or logs in to get one), publishes pre-encoded VP8 and Opus
(:mod:`bots.media_files`: generated once with PyAV and cached, so a running bot never encodes),
subscribes, and reports frames received, loss, freezes and latency (:class:`BotReport`).

How the frame counter, send time and publisher identity travel: every audio packet and every video
frame carries a 24-byte stamp at the end of its codec payload (:mod:`bots.stamp`), which the SFU forwards
untouched while it rewrites SSRC, sequence numbers, timestamps, payload types and extension ids.
The RTP timestamps are tied exactly to the send schedule and the sender reports are truthful, so
a receiver can also recover the send time from the server-translated SRs (reported as
``sr_latency_ms_p50``, a cross-check of the SFU's SR translation). Decoded pictures show their
loop index as a bar code (:mod:`bots.picture`).

Receiving is through slots (the stage, thumbnails, extra voices), negotiated once at subscribe;
``slot`` events say who each slot carries, and every stamped frame is checked against that.

Layout: ``publisher`` / ``subscriber`` are the media halves (offer/answer methods, usable without
any server: :mod:`bots.inprocess` wires them to a media.Router); ``client`` speaks the socket.io
signaling protocol; ``bot`` combines them (and reconnects, with a new join token from a
:mod:`bots.tokens` source each time); ``cli`` is ``python -m bots``.
"""

from __future__ import annotations

from .bot import Bot, BotOptions, run_bot
from .client import SignalingClient
from .errors import BotError, LoginError, MediaFileError, NegotiationError, ReconnectImpossible, SignalingError
from .login import LoginTokenSource, fetch_join_token
from .media_files import MediaParams, PreEncodedMedia, load_media
from .publisher import Publisher
from .report import BotReport, ConnectionInterval, PublishReport, StreamReport
from .subscriber import Subscriber
from .tokens import CallableTokenSource, StaticToken, TokenSource

__all__ = [
    "Bot",
    "BotError",
    "BotOptions",
    "BotReport",
    "CallableTokenSource",
    "ConnectionInterval",
    "LoginError",
    "LoginTokenSource",
    "MediaFileError",
    "MediaParams",
    "NegotiationError",
    "PreEncodedMedia",
    "PublishReport",
    "Publisher",
    "ReconnectImpossible",
    "SignalingClient",
    "SignalingError",
    "StaticToken",
    "StreamReport",
    "Subscriber",
    "TokenSource",
    "fetch_join_token",
    "load_media",
    "run_bot",
]
