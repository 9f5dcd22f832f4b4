"""A slot's temporal layers, pausing, RED and padding: the part of :class:`media.slot.Slot` that
decides which of its source's packets go out and what else it sends.

- ``set_layer(0..2 | PAUSED)``: VP8 temporal layers TL0..layer (an L1T3 stream: TL0 a quarter of the
  frames, TL1 a quarter, TL2 half). Down at the next frame boundary, up only at a layer-sync frame
  (Y bit) or a keyframe; every dropped packet takes no sequence number and every dropped frame no
  PictureID (TL0PICIDX counts TL0 frames, which are never dropped while video goes), so the
  subscriber sees no gap; a packet arriving late (after newer ones were numbered) is placed by the
  drops after it. ``PAUSED`` sends no video at all; resuming waits for a keyframe.
- ``set_red``: RED (RFC 2198) on an audio slot that negotiated it.
- ``send_padding``: padding-only RTX packets for the site budget's probes.

A mixin: its state lives in the slot (initialised in ``Slot.__init__``), the hot path in
``Slot._send`` calls :meth:`SlotLayers._keep` only for a packet above the layer it forwards.
"""

from __future__ import annotations

from functools import partial

from .keyframe import is_keyframe
from .red import RedEncoder
from .slot_tap import SlotTap
from .rtp_packet import RtpPacketView, abs_send_time_now, monotonic_ms
from .vp8_descriptor import NONE, source_picture_id

#: The highest VP8 temporal layer a slot forwards (L1T3: TL0, TL1, TL2); ``set_layer(PAUSED)``
#: sends no video at all.
TOP_LAYER = 2
PAUSED = -1
#: Source sequence numbers / PictureIDs of dropped upper-layer packets / frames remembered to place a
#: late packet (one that arrives after newer ones were numbered) in the renumbered sequence.
MAX_DROPS = 512
#: While a higher layer is wanted and no layer-sync frame comes, ask the source for a keyframe this often.
_UPSWITCH_KEYFRAME_MS = 3000
#: RTP padding of n bytes (n - 1 zeros, then n), by n.
_PADDING_BODIES = [b""] + [bytes(n - 1) + bytes((n,)) for n in range(1, 256)]


class SlotLayers:
    """Temporal layers, pausing, RED and padding of a :class:`media.slot.Slot` (see the module docstring)."""


    @property
    def target_layer(self) -> int:
        """The highest temporal layer wanted (:data:`TOP_LAYER`: all), or :data:`PAUSED`."""
        return self._target_layer

    @property
    def layer(self) -> int:
        """The highest temporal layer forwarded now (:data:`PAUSED` while no video goes)."""
        return self._layer if self._started else PAUSED

    @property
    def paused(self) -> bool:
        return self._target_layer == PAUSED

    def set_layer(self, layer: int) -> None:
        """Forward VP8 temporal layers 0..``layer`` (:data:`TOP_LAYER`: all), or no video (:data:`PAUSED`).

        Down at the next frame boundary (the frame being sent is finished), and the sequence numbers
        and PictureIDs of what is dropped are taken out so the subscriber sees no gap; up at the next
        layer-sync frame (Y bit) or keyframe of a wanted layer; from PAUSED at the source's next
        keyframe (asked for now). The base layer is never dropped while video goes. An audio slot
        is paused (at once) or not (from its next packet): any layer but PAUSED is all of it.
        """
        if not PAUSED <= layer <= TOP_LAYER:
            raise ValueError(f"a slot's layer is {PAUSED}..{TOP_LAYER}, not {layer}")
        if not self._video and layer != PAUSED:
            layer = TOP_LAYER
        if self.closed or layer == self._target_layer:
            return
        previous, self._target_layer = self._target_layer, layer
        if layer == PAUSED:
            if self._pending is not None:  # the slot goes to the pending source, paused
                producer = self._pending.producer
                self._drop_pending()
                self._empty_now()
                self._current = SlotTap(self, producer)
                self._emit_switch(producer, None)
            elif self._video and self._started and not self._frame_done and not self._held:
                self._set_layer_now(PAUSED)  # at the end of the frame being sent (see _keep)
            else:
                self._pause_now()
            return
        if previous == PAUSED:
            current = self._current
            if self._started:  # the pause had not taken effect yet: nothing was dropped
                self._set_layer_now(layer)
            elif self._video and current is not None and current.producer.forwarding and self.link_up:
                self._request_keyframe(current.producer, force=True)
            return
        if layer < self._layer:
            self._set_layer_now(layer)  # the frame being sent goes on (its timestamp is _kept_ts)
            self._layer_changed_seq = (self._max_seq - self._seq_offset) & 0xFFFF
        elif layer > self._layer:
            self._upswitch_since_ms = monotonic_ms()
            self._pass = -1  # look at every packet for a layer-sync frame or keyframe

    def _set_layer_now(self, layer: int) -> None:
        self._layer = layer
        self._pass = layer if self._target_layer <= layer else -1

    def _pause_now(self) -> None:
        self._started = False
        self._set_layer_now(PAUSED)
        self._queue = None
        current = self._current
        if current is not None:
            current.forward = partial(self._on_packet, current)

    def _keep(self, packet: RtpPacketView) -> bool:
        """A packet above the layer forwarded now: True to send it (the rest of the frame being
        sent, or a frame where a wanted higher layer may start); else it is dropped, and when it is
        newer than everything sent, the numbers after it close up."""
        ts = packet.timestamp
        if ts == self._kept_ts:
            return True
        target = self._target_layer
        if target == PAUSED:
            self._pause_now()
            self.stats.paused_drops += 1
            return False
        tid = packet.tid
        if tid <= target:
            if is_keyframe(self._codec_name, packet.payload):
                up = target
            elif packet.layer_sync and tid > self._layer:
                up = tid
            elif tid <= self._layer:
                return True  # a layer forwarded already (a change up is waited for)
            else:
                up = -1
            if up >= 0:
                if up > self._layer:
                    self.stats.layer_switches += 1
                    self._layer_changed_seq = packet.sequence_number
                self._set_layer_now(up)
                return True
            now = monotonic_ms()
            if now - self._upswitch_since_ms >= _UPSWITCH_KEYFRAME_MS and self._current is not None:
                self._upswitch_since_ms = now  # no layer-sync frame for a while: a keyframe starts every layer
                self._request_keyframe(self._current.producer)
        self.stats.layer_drops += 1
        if 0 < (packet.sequence_number + self._seq_offset - self._max_seq) & 0xFFFF < 0x8000:
            self._seq_offset = (self._seq_offset - 1) & 0xFFFF
            self._dropped_seqs.append(packet.sequence_number)
            self._renumbered = True
            if ts != self._dropped_ts:
                self._dropped_ts = ts
                pid = source_picture_id(packet.body) if self._vp8 else NONE
                if pid != NONE:
                    self._pid_offset = (self._pid_offset - 1) & 0x7FFF
                    self._dropped_pids.append(pid)
        return False

    def _place_late(self, packet: RtpPacketView, seq: int) -> tuple[int, int] | None:
        """(slot seq, PictureID offset) of a packet older than the newest sent, in an epoch where
        upper-layer packets were dropped: its number is the current offset's plus the drops after
        it. None for an upper-layer packet from before the last layer change (its frame may have
        been dropped)."""
        src = packet.sequence_number
        if packet.tid and (src - self._layer_changed_seq) & 0xFFFF >= 0x8000:
            return None
        later = sum(1 for d in self._dropped_seqs if 0 < (d - src) & 0xFFFF < 0x8000)
        pid_offset = self._pid_offset
        if self._dropped_pids:
            pid = source_picture_id(packet.body)
            if pid != NONE:
                pid_offset += sum(1 for d in self._dropped_pids if 0 < (d - pid) & 0x7FFF < 0x4000)
        return (seq + later) & 0xFFFF, pid_offset & 0x7FFF

    @property
    def red(self) -> bool:
        """This audio slot wraps its packets in RED."""
        return self._red is not None

    def set_red(self, on: bool) -> None:
        """Add RED redundancy (the previous packet in each) or stop; only where the subscriber
        negotiated ``red/48000/2`` (others get plain Opus)."""
        if self._video or self._rewriter is None or self._red_pt < 0:
            return
        if on and self._red is None:
            self._red = RedEncoder(self._rewriter.payload_type, distance=1)
        elif not on:
            self._red = None

    @property
    def can_pad(self) -> bool:
        """Padding can go out: RTX negotiated and the subscriber's connection up."""
        return self._rtx_pt is not None and self._rewriter is not None and self.link_up and not self.closed

    def send_padding(self, size: int) -> int:
        """Padding-only packets on the slot's RTX stream (bandwidth probing: the subscriber's
        estimator counts them, its decoder never sees them): ``size`` bytes of padding in packets of
        at most 255. Returns the bytes sent; none without RTX or while the connection is down."""
        rewriter = self._rewriter
        if not self.can_pad or rewriter is None:
            return 0
        view = self._out
        view.marker = 0
        view.audio_level = -1
        sent = 0
        abs_send_time = abs_send_time_now()
        while size > 0:
            n = min(255, size)
            view.body = _PADDING_BODIES[n]
            view.padding_size = n
            data = rewriter.serialize(view, self._rtx_seq, self._max_ts, abs_send_time, ssrc=self.rtx_ssrc,
                                      payload_type=self._rtx_pt)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            if self._send_rtp(data):
                sent += len(data)
            size -= n
        self.stats.padding_bytes_sent += sent
        return sent
