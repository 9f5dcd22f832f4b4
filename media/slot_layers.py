"""A slot's temporal layers, pausing, RED and padding: the part of :class:`media.slot.Slot` that
decides which of its source's packets go out and what else it sends.

- ``set_layer(0..2 | PAUSED)``: VP8 temporal layers TL0..layer (an L1T3 stream: TL0 a quarter of the
  frames, TL1 a quarter, TL2 half), through the slot's :class:`media.layer_thinning.LayerThinning`
  (the one a pipe's tap uses too): down at the next frame boundary, up only at a layer-sync frame
  (Y bit) or a keyframe; every dropped packet takes no sequence number and every dropped frame no
  PictureID, so the subscriber sees no gap; a late packet is placed by the drops after it.
  ``PAUSED`` sends no video at all; resuming waits for a keyframe.
- ``set_red``: RED (RFC 2198) on an audio slot that negotiated it.
- ``send_padding``: padding-only RTX packets for the site budget's probes.

A mixin: its state lives in the slot (initialised in ``Slot.__init__``), the hot path in
``Slot._send`` calls ``LayerThinning.keep`` only for a packet above the layer it forwards.
"""

from __future__ import annotations

from functools import partial

from .layer_thinning import PAUSED, TOP_LAYER
from .red import RedEncoder
from .slot_tap import SlotTap
from .rtp_packet import abs_send_time_now

__all__ = ["PAUSED", "TOP_LAYER", "SlotLayers"]

#: RTP padding of n bytes (n - 1 zeros, then n), by n.
_PADDING_BODIES = [b""] + [bytes(n - 1) + bytes((n,)) for n in range(1, 256)]


class SlotLayers:
    """Temporal layers, pausing, RED and padding of a :class:`media.slot.Slot` (see the module docstring)."""

    @property
    def target_layer(self) -> int:
        """The highest temporal layer wanted (:data:`TOP_LAYER`: all), or :data:`PAUSED`."""
        return self._thin.target

    @property
    def layer(self) -> int:
        """The highest temporal layer forwarded now (:data:`PAUSED` while no video goes)."""
        return self._thin.layer if self._started else PAUSED

    @property
    def paused(self) -> bool:
        return self._thin.target == PAUSED

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
        thin = self._thin
        if self.closed or layer == thin.target:
            return
        previous = thin.target
        if layer == PAUSED:
            thin.target = PAUSED
            if self._pending is not None:  # the slot goes to the pending source, paused
                producer = self._pending.producer
                self._drop_pending()
                self._empty_now()
                self._current = SlotTap(self, producer)
                self._emit_switch(producer, None)
            elif self._video and self._started and not self._frame_done and not self._held:
                thin.set_now(PAUSED)  # at the end of the frame being sent (see LayerThinning.keep)
            else:
                self._pause_now()
            return
        if previous == PAUSED:
            thin.target = layer
            current = self._current
            if self._started:  # the pause had not taken effect yet: nothing was dropped
                thin.set_now(layer)
            elif self._video and current is not None and current.producer.forwarding and self.link_up:
                self._request_keyframe(current.producer, force=True)
            return
        # down now (the frame being sent goes on), or up at the next layer-sync frame or keyframe
        thin.change_target(layer, (self._max_seq - thin.seq_offset) & 0xFFFF)

    def _pause_now(self) -> None:
        self._started = False
        self._thin.set_now(PAUSED)
        self._queue = None
        current = self._current
        if current is not None:
            current.forward = partial(self._on_packet, current)

    def _paused_at_frame_end(self) -> None:
        """The thinning met the first packet after the frame a pause waited for (LayerThinning on_pause)."""
        self._pause_now()
        self.stats.paused_drops += 1

    def _ask_upswitch_keyframe(self) -> None:
        """A higher layer waits and no layer-sync frame came for a while (LayerThinning ask_keyframe)."""
        if self._current is not None:
            self._request_keyframe(self._current.producer)

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
