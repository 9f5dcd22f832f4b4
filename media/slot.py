"""Slot: one fixed outgoing stream of a subscriber's receiving connection whose source can change.

A receiving connection is negotiated once with a fixed set of slots (see :mod:`media.slot_set`).
Each slot has its own SSRC (and RTX SSRC), payload type, MID and header-extension ids, fixed by
that one negotiation; which producer it carries changes without SDP. The slot rewrites the
current source's packets so the subscriber sees one continuous stream:

- sequence numbers continue across switches (a new *epoch* starts at the next number), so the
  receiver sees no gap beyond real loss and no repeat;
- RTP timestamps continue: a new epoch starts ``max(wall-clock time since the last packet sent,
  one audio frame)`` after the last timestamp sent, in the slot's clock rate;
- payload type and header-extension ids are the slot's (:class:`media.rewriter.RtpRewriter`);
- VP8 PictureID / TL0PICIDX continue across switches (:mod:`media.vp8_descriptor`).

Switching: :meth:`Slot.switch_to` makes the new producer *pending*. Video keeps forwarding the
old source until the new source's first keyframe arrives (a PLI is sent to it at once, through
the producer's own throttle, and again every ``keyframe_retry_ms`` while waiting), then cuts
over at that keyframe; no delta frame of the new source is ever sent before it. Audio stops the
old source at once and starts the new one at its next packet. The ``switch`` event
(:class:`SlotSwitch`) fires, for video, right after the first packet (the keyframe) of the new
source went out, with its RTP timestamp; for audio at the switch itself (a voice the floor gate
holds back may send nothing for a long time), with no RTP timestamp (-1).

Per subscriber the slot forwards the temporal layers its site's budget allows, pauses video, adds
RED to audio and pads for probes (:mod:`media.slot_layers`), and answers the subscriber's NACKs,
keyframe requests and reports (:mod:`media.slot_feedback`): two mixins over this class's state.

Packets reach the slot through a *tap* put in ``producer.sinks`` (a :class:`media.producer.Sink`:
``forwarding``, ``forward``, ``on_producer_state``, ``send_sender_report``, ``close``).

Events: ``switch`` (SlotSwitch), ``close`` ().
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Literal

from .errors import UnsupportedError
from .events import EventEmitter
from .byte_bucket import ByteBucket
from .keyframe import is_keyframe
from .parameters import StreamParameters
from .red import RedEncoder
from .rewriter import RtpRewriter
from .round_trip import RoundTrip
from .rtp_packet import BYTES, RtpPacketView, monotonic_ms
from .sent_map import SENT_MAP_MASK, Epoch, Sent, new_sent_map
from .slot_report import SlotStats, SlotSwitch
from .slot_feedback import SlotFeedback
from .layer_thinning import LayerThinning
from .slot_layers import PAUSED, TOP_LAYER, SlotLayers
from .slot_tap import SlotTap
from .vp8_descriptor import NONE, Vp8Descriptor, shift_picture_ids

if TYPE_CHECKING:
    from .producer import Producer

__all__ = ["DEFAULT_KEYFRAME_RETRY_MS", "PAUSED", "TOP_LAYER", "Slot", "SlotKind"]

SlotKind = Literal["audio", "video"]

_UINT16 = struct.Struct("!H")
#: Packets of the new source queued while the old source's frame in flight ends (see _on_packet);
#: past this the cut happens anyway.
_MAX_QUEUED = 256
#: While a switch waits for a keyframe, ask the new source again this often.
DEFAULT_KEYFRAME_RETRY_MS = 500
#: For this long after an epoch starts a packet numbered before its first one is late (from the source
#: before, or before a restart) and dropped; later the numbers may have wrapped past the epoch's first.
EPOCH_LATE_MS = 10_000


class Slot(SlotLayers, SlotFeedback, EventEmitter):
    """One outgoing RTP stream (fixed SSRC / PT / MID) whose source producer can change."""

    def __init__(
        self,
        *,
        slot_id: str,
        kind: SlotKind,
        ssrc: int,
        rtx_ssrc: int,
        cname: str,
        stream_id: str,
        send_rtp: Callable[[bytes], bool],
        send_rtcp: Callable[[bytes], bool],
        keyframe_retry_ms: int = DEFAULT_KEYFRAME_RETRY_MS,
        next_sequence: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("audio", "video"):
            raise ValueError(f"slot kind must be 'audio' or 'video', not {kind!r}")
        self.id = slot_id
        self.kind = kind
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.cname = cname
        #: The msid stream this slot's track belongs to (the stage's audio and video share one).
        self.stream_id = stream_id
        self.parameters: StreamParameters | None = None
        self.mid: str | None = None
        self.closed = False
        self.keyframe_retry_ms = keyframe_retry_ms
        #: Whether the subscriber's connection can carry packets (its transport says so; a slot on its
        #: own, in tests, is always up). A source starts only while it is: a video slot's first
        #: keyframe must reach the subscriber.
        self.link_up = True
        self.stats = SlotStats()
        self._send_rtp = send_rtp
        self._send_rtcp = send_rtcp
        self._next_sequence = next_sequence or itertools.count(1).__next__
        self._rewriter: RtpRewriter | None = None
        self._rtx_pt: int | None = None
        self._codec_name = ""
        self._clock_rate = 90000 if kind == "video" else 48000
        self._video = kind == "video"
        self._vp8 = False
        self._red_pt = -1
        #: RED (RFC 2198) on this audio slot: each packet carries the one before (a lossy site).
        self._red: RedEncoder | None = None
        self._current: SlotTap | None = None
        self._pending: SlotTap | None = None
        self._announce = False
        #: A video switch is waiting for the new source's keyframe and the old source's last frame is
        #: complete: the old source's next packets are not sent (no partial frame reaches the subscriber).
        self._held = False
        #: The slot empties at the end of the current source's frame in flight (switch_to(None)).
        self._emptying = False
        #: The producer id the page was last told this slot carries (None: told it is empty).
        self._announced: str | None = None
        #: The last packet sent ended a frame (its marker bit).
        self._frame_done = True
        #: The new source's keyframe (and what followed it) arrived while the old source's frame was
        #: half sent: queued until that frame's last packet went out (a frame cut short would reach
        #: the subscriber's decoder as if complete), then the cut-over sends them.
        self._queue: list[tuple[RtpPacketView, bytes]] | None = None
        self._last_request_ms = -(10**9)
        self._out = RtpPacketView()  # reused to serialize a rewritten VP8 body
        # epoch state
        self._started = False
        self._ever_started = False
        self._ts_offset = 0
        self._tl0_offset = 0
        self._epoch_start = 0
        self._epoch_ms = 0
        self._epoch: Epoch | None = None
        self._sent: list[Sent | None] = new_sent_map()  # answers NACKs (slot seq -> source seq, epoch)
        self._resent: dict[int, int] = {}  # slot seq -> when last retransmitted (ms)
        #: The site's retransmission allowance, shared by its slots (None: no limit; media/byte_bucket.py).
        self.rtx_bucket: ByteBucket | None = None
        #: Temporal layers (video) and the epoch's numbering: the layer the budget wants, the layer
        #: forwarded now, the sequence number / PictureID offsets closed up over what is dropped.
        self._thin = LayerThinning(self.stats, self._ask_upswitch_keyframe, codec_name="",
                                   on_pause=self._paused_at_frame_end)
        self._max_seq = random.randrange(0, 0x8000)
        self._max_ts = random.getrandbits(32)
        self._max_ms = 0
        self._last_step = 0
        self._last_pid = NONE
        self._last_tl0 = NONE
        self._rtx_seq = random.randrange(0, 0x8000)
        self._round_trip = RoundTrip()

    def __repr__(self) -> str:
        source = self._current.producer.id if self._current is not None else None
        return f"Slot({self.id!r}, {self.kind}, source={source!r})"

    # -- negotiation ------------------------------------------------------------------------

    def configure(self, parameters: StreamParameters) -> None:
        """Apply what the subscriber's answer negotiated for this slot's m-line (once, at join)."""
        if parameters.kind != self.kind:
            raise UnsupportedError(f"slot {self.id}: a {self.kind} slot cannot use a {parameters.kind} m-line")
        try:
            rewriter = RtpRewriter(
                ssrc=self.ssrc, payload_type=parameters.payload_type, ids=parameters.ext_ids, mid=parameters.mid
            )
        except ValueError as exc:
            raise UnsupportedError(f"slot {self.id}: {exc}") from exc
        self.parameters = parameters
        self.mid = parameters.mid
        self._rewriter = rewriter
        self._rtx_pt = parameters.rtx_payload_type
        self._codec_name = parameters.codec_name
        self._clock_rate = parameters.clock_rate or self._clock_rate
        self._vp8 = parameters.codec_name.upper() == "VP8"
        self._thin.set_codec(parameters.codec_name)
        self._red_pt = parameters.red_payload_type if parameters.red_payload_type is not None else -1

    @property
    def ready(self) -> bool:
        return self._rewriter is not None

    # -- sources ----------------------------------------------------------------------------

    @property
    def source(self) -> Producer | None:
        """The producer whose packets the slot sends now."""
        return self._current.producer if self._current is not None else None

    @property
    def pending(self) -> Producer | None:
        """The producer the slot switches to at its next keyframe (video) or packet (audio)."""
        return self._pending.producer if self._pending is not None else None

    @property
    def target(self) -> Producer | None:
        """Where the slot is going: the pending source if any, else the current one."""
        return self.pending or self.source

    @property
    def forwarding(self) -> bool:
        return self._current is not None and self._started

    def switch_to(self, producer: Producer | None) -> None:
        """Carry ``producer`` from its next keyframe (video) or packet (audio); None empties the slot."""
        if self.closed:
            return
        if producer is None:
            self._drop_pending()
            current = self._current
            if current is not None and self._video and self._started and not self._held and not self._frame_done:
                # Empty the slot once the frame in flight is complete (never a frame cut short).
                self._emptying = True
                current.forward = partial(self._on_packet, current)
                return
            self._empty_now()
            if self._announced is not None:
                self._emit_switch(None, None)
            return
        self._emptying = False
        if producer.kind != self.kind:
            raise ValueError(f"slot {self.id} is {self.kind}; {producer!r} is {producer.kind}")
        if self.parameters is not None and (
            producer.parameters.codec_name.upper() != self._codec_name.upper()
            or producer.parameters.clock_rate != self._clock_rate
        ):
            raise UnsupportedError(
                f"slot {self.id} negotiated {self._codec_name}/{self._clock_rate}; "
                f"{producer!r} sends {producer.parameters.codec_name}/{producer.parameters.clock_rate}"
            )
        if producer.closed:
            raise ValueError(f"{producer!r} is closed")
        if self._pending is not None and self._pending.producer is producer:
            return
        if self._current is not None and self._current.producer is producer:
            self._drop_pending()  # switching back before the other source's keyframe came
            self._resume_current()
            return
        self._drop_pending()
        if self._video and self._thin.target == PAUSED:
            # Video is paused (budget or request): the new source becomes the current one, not
            # started; the page is told now; its keyframe is asked for when the slot resumes.
            self._empty_now()
            self._current = SlotTap(self, producer)
            self.stats.switches += 1
            self._emit_switch(producer, None)
            return
        self._pending = SlotTap(self, producer)
        self.stats.switches += 1
        if self._video:
            if self._current is not None and self._started:
                # The old source goes on until its frame in flight is complete (through the check path).
                self._current.forward = partial(self._on_packet, self._current)
            if self.link_up:  # else when the link comes up: a keyframe now would be lost, and the
                self._request_keyframe(producer, force=True)  # producer's PLI throttle would delay the next
            return
        # Audio switches at once: nothing more of the old voice, the new one from its next packet; the
        # page is told now (a voice the floor gate holds back may send nothing for a long time).
        if self._current is not None:
            self._current.detach()
            self._current = None
            self._started = False
        self._emit_switch(producer, None)

    def _empty_now(self) -> None:
        self._queue = None
        if self._current is not None:
            self._current.detach()
            self._current = None
        self._started = self._held = self._emptying = False

    def _resume_current(self) -> None:
        """No switch is waiting any more: the current source goes on (from a keyframe if it was held)."""
        current = self._current
        if current is None or not self._started:
            return
        if self._held:
            self._held = False
            self._started = False  # frames were skipped: restart at a keyframe
            if current.producer.forwarding:
                self._request_keyframe(current.producer, force=True)
        else:
            current.forward = self._send

    def _drop_pending(self) -> None:
        self._queue = None
        if self._pending is not None:
            self._pending.detach()
            self._pending = None

    def _request_keyframe(self, producer: Producer, *, force: bool = False) -> None:
        now = monotonic_ms()
        if force or now - self._last_request_ms >= self.keyframe_retry_ms:
            self._last_request_ms = now
            self.stats.source_keyframe_requests += 1
            producer.request_keyframe()  # throttled per producer (MediaConfig.pli_throttle_ms)

    def _on_source_state(self, tap: SlotTap) -> None:
        """The source paused, resumed or was muted: restart the epoch at its next (key)frame."""
        if tap is self._current:
            if self._emptying:  # it was leaving the slot anyway
                self._empty_now()
                self._emit_switch(None, None)
                return
            if self._queue is not None:  # the old frame will not end now: cut over to the queued keyframe
                self._flush_queue()
                return
            self._started = False
            self._held = False
            tap.forward = partial(self._on_packet, tap)  # back through the keyframe check
            if self._video and tap.producer.forwarding:
                self._request_keyframe(tap.producer, force=True)

    def _on_source_closed(self, tap: SlotTap) -> None:
        if tap is self._pending:
            self._pending = None
            self._queue = None
            if not self._video and self._current is None:
                self._emit_switch(None, None)  # the voice announced at the switch is gone
            self._resume_current()
        elif tap is self._current:
            self._current = None
            self._started = self._held = False
            if self._emptying:
                self._emptying = False
                self._emit_switch(None, None)
                return
            if self._pending is not None and self._queue is not None:
                self._flush_queue()  # the old frame will never end: cut over to the queued keyframe
            else:  # empty (until the pending source's keyframe, if any): the page stops showing the gone one
                self._emit_switch(None, None)

    def _emit_switch(self, producer: Producer | None, packet_seq_ts: tuple[int, int] | None) -> None:
        seq, ts = packet_seq_ts if packet_seq_ts is not None else (-1, -1)
        self._announced = producer.id if producer is not None else None
        self.emit(
            "switch",
            SlotSwitch(
                slot_id=self.id,
                producer_id=producer.id if producer is not None else None,
                participant_id=producer.participant_id if producer is not None else None,
                sequence=self._next_sequence(),
                rtp_sequence_number=seq,
                rtp_timestamp=ts,
            ),
        )

    # -- forwarding (hot path) ------------------------------------------------------------

    def set_link_up(self, up: bool) -> None:
        """The subscriber's connection came up (ask the awaited source for a keyframe now) or went down."""
        if up == self.link_up:
            return
        self.link_up = up
        self._queue = None  # queued packets would be stale: the source is asked again when the link is up
        if up and self._video and not self.closed:
            tap = self._pending or (self._current if not self._started else None)
            if tap is not None and tap.producer.forwarding:
                self._request_keyframe(tap.producer, force=True)

    def _on_packet(self, tap: SlotTap, packet: RtpPacketView, abs_send_time: bytes) -> None:
        if self._rewriter is None:
            return
        if not self.link_up:
            self.stats.waiting_link_drops += 1
            return
        if self._thin.target == PAUSED and not (tap is self._current and self._started):
            self.stats.paused_drops += 1
            return
        if tap is self._current:
            if not self._started:
                if self._video and not is_keyframe(self._codec_name, packet.payload):
                    self.stats.waiting_keyframe_drops += 1
                    self._request_keyframe(tap.producer)
                    return
                self._start_epoch(tap.producer, packet)
            elif self._emptying:
                self._send(packet, abs_send_time)
                if packet.marker:
                    self._empty_now()
                    self._emit_switch(None, None)
                return
            elif self._pending is not None and self._video:
                # A switch waits for the new source's keyframe: finish the old source's frame in flight,
                # then send nothing of it (a frame cut short would reach the decoder incomplete).
                if self._held:
                    self.stats.held_drops += 1
                    return
                if self._queue is not None and (packet.timestamp + self._ts_offset) & 0xFFFFFFFF != self._max_ts:
                    # The new keyframe waits for this source's frame to end, but a new frame began: the
                    # old frame's end was lost upstream. Cut over now; this frame is not sent.
                    self.stats.held_drops += 1
                    self._flush_queue()
                    return
                self._send(packet, abs_send_time)
                self._held = bool(packet.marker)
                if self._held and self._queue is not None:
                    self._flush_queue()
                return
            self._send(packet, abs_send_time)
            return
        if tap is not self._pending:
            return  # a detached tap (cannot happen: a detached tap is out of the fan-out)
        queue = self._queue
        if queue is not None:
            queue.append((packet, abs_send_time))
            if len(queue) >= _MAX_QUEUED:
                self._flush_queue()
            return
        if self._video and not is_keyframe(self._codec_name, packet.payload):
            self.stats.waiting_keyframe_drops += 1
            self._request_keyframe(tap.producer)
            return
        current = self._current
        if self._video and current is not None and self._started and not self._held and not self._frame_done:
            # The old source's frame is half sent: the keyframe waits for its last packet.
            self._queue = [(packet, abs_send_time)]
            return
        self._cut_over(tap, packet, abs_send_time)

    def _flush_queue(self) -> None:
        """Cut over to the queued keyframe and send what followed it."""
        queue, self._queue = self._queue, None
        tap = self._pending
        if not queue or tap is None:
            return
        packet, abs_send_time = queue[0]
        self._cut_over(tap, packet, abs_send_time)
        for packet, abs_send_time in queue[1:]:
            if self._current is not tap or not self._started:
                break  # a listener of the switch changed the slot again
            tap.forward(packet, abs_send_time)

    def _cut_over(self, tap: SlotTap, packet: RtpPacketView, abs_send_time: bytes) -> None:
        """Cut over to ``tap`` at this keyframe (video) or packet (audio)."""
        if self._current is not None:
            self._current.detach()
        self._current = tap
        self._pending = None
        self._held = False
        self._start_epoch(tap.producer, packet)
        sent = self._send(packet, abs_send_time)
        if self._video:
            self._emit_switch(tap.producer, sent)  # audio announced its switch at switch_to

    def _start_epoch(self, producer: Producer, packet: RtpPacketView) -> None:
        next_seq = (self._max_seq + 1) & 0xFFFF
        if self._ever_started:
            wall = (packet.arrival_ms - self._max_ms) * self._clock_rate // 1000
            elapsed = max(1, wall, 0 if self._video else self._last_step or self._clock_rate // 50)
        else:
            elapsed = 1
        seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
        pid_offset = 0
        self._ts_offset = (self._max_ts + elapsed - packet.timestamp) & 0xFFFFFFFF
        if self._vp8:
            try:
                desc = Vp8Descriptor.parse(packet.body)
            except ValueError:
                desc = None
            if desc is not None and desc.picture_id_bytes:
                base = (self._last_pid + 1) & 0x7FFF if self._last_pid != NONE else desc.picture_id
                pid_offset = (base - desc.picture_id) & 0x7FFF
            if desc is not None and desc.tl0picidx != NONE:
                base = (self._last_tl0 + 1) & 0xFF if self._last_tl0 != NONE else desc.tl0picidx
                self._tl0_offset = (base - desc.tl0picidx) & 0xFF
            else:
                self._tl0_offset = 0
        self._epoch_start = next_seq
        self._epoch_ms = packet.arrival_ms
        self._epoch = Epoch.of(producer, self._ts_offset, self._tl0_offset)
        if self._red is not None:
            self._red.reset()  # never the previous source's voice as this one's redundancy
        # a keyframe (or audio): every wanted layer may start here, nothing dropped yet
        self._thin.restart(packet.sequence_number, seq_offset, pid_offset)
        self._max_seq = (next_seq - 1) & 0xFFFF
        self._started = True
        if self._current is not None:
            # Steady state: the producer's fan-out calls _send directly (one Python frame per packet).
            self._current.forward = self._send
        self._ever_started = True
        if producer.last_sr is not None:
            self.send_sender_report()

    def _send(self, packet: RtpPacketView, abs_send_time: bytes) -> tuple[int, int] | None:
        """Rewrite and send one packet of the current epoch; (slot seq, slot ts) when sent."""
        thin = self._thin
        if packet.tid > thin.pass_tid and not thin.keep(packet, self._max_seq):
            return None
        seq = (packet.sequence_number + thin.seq_offset) & 0xFFFF
        pid_offset = thin.pid_offset
        if (self._max_seq - seq) & 0xFFFF < 0x8000:  # not newer than the newest sent: late, or again
            placed = thin.place_late(packet, seq)
            if placed is None or self._before_epoch(placed[0], packet.arrival_ms):
                self.stats.late_drops += 1
                return None
            seq, pid_offset = placed
        ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        pid = tl0 = red_pt = NONE
        out = packet
        if self._vp8:
            body = packet.body
            if len(body) > 5 and body[0] & 0x80 and body[1] & 0x80 and body[2] & 0x80:
                # The common forms: X, I with a 15-bit PictureID at 2..3, then (libwebrtc) L with
                # TL0PICIDX at 4, or (aiortc) nothing more. Read and rewritten in place, no parser.
                pid = ((((body[2] & 0x7F) << 8) | body[3]) + pid_offset) & 0x7FFF
                shifted = None
                if body[1] & 0x40:
                    tl0 = (body[4] + self._tl0_offset) & 0xFF
                    if pid_offset or self._tl0_offset:
                        shifted = b"".join((body[:2], _UINT16.pack(0x8000 | pid), BYTES[tl0], body[5:]))
                elif pid_offset:
                    shifted = b"".join((body[:2], _UINT16.pack(0x8000 | pid), body[4:]))
                if shifted is not None:
                    out = self._out
                    out.marker = packet.marker
                    out.padding_size = packet.padding_size
                    out.audio_level = packet.audio_level
                    out.body = shifted
            else:
                try:
                    out, pid, tl0 = shift_picture_ids(packet, self._out, pid_offset, self._tl0_offset)
                except ValueError:
                    self.stats.malformed_drops += 1
                    return None
        elif self._red is not None:
            out = self._out
            out.marker = packet.marker
            out.padding_size = 0
            out.audio_level = packet.audio_level
            out.body = self._red.encode(packet.payload, ts)
            red_pt = self._red_pt
        data = self._rewriter.serialize(out, seq, ts, abs_send_time, payload_type=red_pt)
        self._frame_done = packet.marker
        thin.kept_ts = packet.timestamp
        self._sent[seq & SENT_MAP_MASK] = (seq, packet.sequence_number, self._epoch, pid)
        stats = self.stats
        if self._send_rtp(data):
            stats.packets_sent += 1
            stats.bytes_sent += len(data)
            stats.payload_bytes_sent += len(packet.body)
        else:
            stats.send_failures += 1
        if (seq - self._max_seq) & 0xFFFF < 0x8000:
            step = (ts - self._max_ts) & 0xFFFFFFFF
            if 0 < step < self._clock_rate // 5:
                self._last_step = step
            self._max_seq = seq
            self._max_ts = ts
            self._max_ms = packet.arrival_ms
            if pid != NONE:
                self._last_pid = pid
            if tl0 != NONE:
                self._last_tl0 = tl0
        return seq, ts

    def _before_epoch(self, seq: int, arrival_ms: int) -> bool:
        """A packet numbered ``seq`` (not newer than the newest sent) is from before this epoch (its
        source's packets before a restart, late): only while the epoch is young, its numbers not wrapped."""
        start = self._epoch_start
        return (arrival_ms - self._epoch_ms < EPOCH_LATE_MS
                and (seq - start) & 0xFFFF > (self._max_seq - start) & 0xFFFF)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._drop_pending()
        if self._current is not None:
            self._current.detach()
            self._current = None
        self._started = False
        self.emit("close")
        self.remove_all_listeners()
