// Receiving media through slots: the receiving connection is negotiated once, at subscribe, with a
// fixed set of slots (stage-audio + stage-video, thumbnails video-0.., extra voices audio-0..); the
// server then moves participants between slots without any new offer and sends a `slot` event for
// every switch. See signaling/protocol.py and media/slot_assignment.py.
//
// Who a slot shows changes on the page exactly when the new source's first frame is presented: a
// video slot's switch waits for the first frame whose RTP timestamp is at or after the event's
// rtp_timestamp (requestVideoFrameCallback), so no name is ever shown under someone else's face;
// audio slots switch at once.
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { iceGathered } from "./media.js";
import { byId, el } from "./dom.js";

export const STAGE_AUDIO = "stage-audio";
export const STAGE_VIDEO = "stage-video";
/** Thumbnails the server can give (signaling/protocol.py: videos 0..8). */
const MAX_THUMBNAILS = 8;

/** a is at or after b in 32-bit RTP timestamp arithmetic (wrap-around). */
export function rtpAtOrAfter(a, b) {
  return ((a - b) >>> 0) < 2 ** 31;
}

export class RoomSlots {
  /** Subscribe once: the server's one offer with its slots, answered once. Throws on failure. */
  async subscribe() {
    const pc = this.newPeerConnection("recv");
    this.recvPc = pc;
    this.jitterTarget = null;  // a new connection: its receivers hold nothing yet, and its round trip is new
    this.recentRttMs = [];
    const signal = this.signal;
    const self = this;
    pc.addEventListener("track", function (event) { self.onSlotTrack(pc, event); });
    // The stage counts as one of the last-N videos; thumbnails for the rest, as many as the server gives.
    const videos = Math.max(0, Math.min(MAX_THUMBNAILS, this.defaultLastN - 1));
    const reply = await signal.call("subscribe", { videos: videos });
    if (!reply.ok) {
      throw this.replyError(reply);
    }
    this.setUpSlots(reply.slots || []);
    this.resetView(); // the new connection's budget knows nothing of what this page shows
    await pc.setRemoteDescription({ type: "offer", sdp: reply.sdp });
    pc.getTransceivers().forEach(function (transceiver) {
      const slot = transceiver.mid === null ? null : this.slotsByMid.get(String(transceiver.mid));
      if (slot) {
        this.attachSlotTrack(slot, transceiver.receiver.track);
      }
    }, this);
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGathered(pc);
    if (pc !== this.recvPc) {
      return; // torn down meanwhile (a reconnection, leaving)
    }
    const answered = await signal.call("answer", { sdp: pc.localDescription.sdp, revision: reply.revision });
    if (!answered.ok) {
      throw this.replyError(answered);
    }
    this.scheduleViewReport();
  }

  replyError(reply) {
    const error = new Error(reply.error.message);
    error.code = reply.error.code;
    return error;
  }

  /** The slots of a new receiving connection: their state, and one media element each. */
  setUpSlots(list) {
    this.clearSlots();
    list.forEach(function (info) {
      const slot = {
        id: info.slot_id,
        kind: info.kind,
        mid: String(info.mid),
        streamId: info.stream_id,
        streamIds: [],
        track: null,
        element: null,
        sequence: -1,
        // What the page shows now, and the switch waiting for its first frame.
        shown: { participantId: null, producerId: null },
        pending: null,
        lastRtpTimestamp: null,
        presentedFrames: 0,
        switches: [],
      };
      this.slots.set(slot.id, slot);
      this.slotsByMid.set(slot.mid, slot);
    }, this);
  }

  clearSlots() {
    this.slots.forEach(function (slot) {
      if (slot.element && slot.id !== STAGE_VIDEO) {
        slot.element.srcObject = null;
        slot.element.remove();
      }
    });
    const stageVideo = byId("stage-video");
    if (stageVideo) {
      stageVideo.srcObject = null;
    }
    this.slots = new Map();
    this.slotsByMid = new Map();
  }

  onSlotTrack(pc, event) {
    if (pc !== this.recvPc) {
      return;
    }
    const mid = event.transceiver ? event.transceiver.mid : null;
    const slot = mid === null ? null : this.slotsByMid.get(String(mid));
    if (slot) {
      slot.streamIds = event.streams.map(function (s) { return s.id; });
    }
  }

  /** One element per slot: the stage's <video>, a <video> per thumbnail slot, an <audio> per voice. */
  attachSlotTrack(slot, track) {
    slot.track = track;
    const stream = new MediaStream([track]);
    let element;
    if (slot.kind === "audio") {
      element = el("audio", { autoplay: true });
      element.dataset.slotId = slot.id;
      byId("audio-sink").appendChild(element);
      element.srcObject = stream;
      element.play().catch(function () {
        byId("sound-button").hidden = false; // the browser waits for a click before playing sound
      });
    } else {
      element = slot.id === STAGE_VIDEO ? byId("stage-video")
        : el("video", { autoplay: true, muted: true, playsInline: true, className: "slot-video" });
      element.dataset.slotId = slot.id;
      element.srcObject = stream;
      if (slot.id !== STAGE_VIDEO) {
        byId("slot-park").appendChild(element);
      }
      this.watchFrames(slot, element);
    }
    slot.element = element;
  }

  /** Every presented frame of a video slot: its RTP timestamp, and a waiting switch applied. */
  watchFrames(slot, element) {
    if (typeof element.requestVideoFrameCallback !== "function") {
      return; // without frame callbacks a switch is applied when its event arrives
    }
    const self = this;
    const onFrame = function (now, metadata) {
      if (self.slots.get(slot.id) !== slot) {
        return; // the connection was replaced: stop watching
      }
      slot.presentedFrames += 1;
      if (typeof metadata.rtpTimestamp === "number") {
        slot.lastRtpTimestamp = metadata.rtpTimestamp;
        if (slot.pending && rtpAtOrAfter(metadata.rtpTimestamp, slot.pending.rtpTimestamp)) {
          self.applySlot(slot, slot.pending, "frame");
        }
      } else if (slot.pending) {
        self.applySlot(slot, slot.pending, "untimed"); // a browser without rtpTimestamp: the next frame
      }
      element.requestVideoFrameCallback(onFrame);
    };
    element.requestVideoFrameCallback(onFrame);
  }

  /** The server moved a slot to another source (or emptied it). */
  onSlot(data) {
    const slot = this.slots.get(data.slot_id);
    if (!slot || typeof data.sequence !== "number" || data.sequence <= slot.sequence) {
      return; // unknown slot, or older than what was applied
    }
    slot.sequence = data.sequence;
    const target = {
      participantId: data.participant_id || null,
      producerId: data.producer_id || null,
      rtpTimestamp: data.rtp_timestamp,
      sequence: data.sequence,
      receivedAt: performance.now(),
    };
    const framed = slot.kind === "video" && target.producerId !== null && typeof data.rtp_timestamp === "number"
      && data.rtp_timestamp >= 0 && slot.element && typeof slot.element.requestVideoFrameCallback === "function";
    if (!framed) {
      // A video slot's source named without a first packet: the slot is paused (the site's budget or
      // its choice), no frame will come to wait for; its tile shows the name card meanwhile.
      const paused = slot.kind === "video" && target.producerId !== null && !(data.rtp_timestamp >= 0);
      this.applySlot(slot, target, paused ? "paused" : "event"); // audio, an emptied slot: at once
      return;
    }
    if (slot.lastRtpTimestamp !== null && rtpAtOrAfter(slot.lastRtpTimestamp, target.rtpTimestamp)) {
      // The new source's frames are on screen already (the event came late): name them now.
      this.applySlot(slot, target, "late");
      return;
    }
    slot.pending = target;
    this.renderSlots();
  }

  /** What a slot shows changes: name tiles and the stage accordingly. */
  applySlot(slot, target, how) {
    slot.pending = null;
    slot.shown = { participantId: target.participantId, producerId: target.producerId };
    slot.switches.push({ sequence: target.sequence, participantId: target.participantId, how: how,
      waitedMs: Math.round(performance.now() - target.receivedAt) });
    if (slot.switches.length > 20) {
      slot.switches.shift();
    }
    this.renderSlots();
  }

  /** Participant id -> the thumbnail slot whose video its tile shows (a slot waiting for its first
   * frame shows nobody: the face still in it belongs to whoever it carried before). */
  thumbnailsByParticipant() {
    const out = new Map();
    this.slots.forEach(function (slot) {
      if (slot.kind !== "video" || slot.id === STAGE_VIDEO || slot.pending || !slot.shown.participantId) {
        return;
      }
      if (!out.has(slot.shown.participantId) && this.participants.has(slot.shown.participantId)) {
        out.set(slot.shown.participantId, slot);
      }
    }, this);
    return out;
  }

  /** Put each thumbnail slot's <video> into the tile of the participant it shows, or park it. */
  placeSlotVideos() {
    const shown = this.thumbnailsByParticipant();
    const placed = new Set();
    shown.forEach(function (slot, participantId) {
      const p = this.participants.get(participantId);
      if (!p.tile || !slot.element) {
        return;
      }
      if (slot.element.parentNode !== p.tile.root) {
        p.tile.root.insertBefore(slot.element, p.tile.placeholder);
        slot.element.play().catch(function () {});
      }
      placed.add(slot);
    }, this);
    const park = byId("slot-park");
    this.slots.forEach(function (slot) {
      if (slot.kind === "video" && slot.id !== STAGE_VIDEO && slot.element && !placed.has(slot)
          && slot.element.parentNode !== park) {
        park.appendChild(slot.element);
      }
    });
    return shown;
  }

  /** Who is on the stage as the page shows it: the stage video's participant, else (no video on the
   * stage) the stage voice's; `pending` while the stage video waits for the new source's first frame. */
  stageShown() {
    const video = this.slots.get(STAGE_VIDEO);
    const audio = this.slots.get(STAGE_AUDIO);
    const out = { participantId: null, video: false, pending: false };
    if (video && video.shown.participantId && !video.pending) {
      out.participantId = video.shown.participantId;
      out.video = true;
    } else if (video && video.pending && video.shown.producerId) {
      out.video = true; // the previous source's frames are still showing: no name under them
      out.pending = true;
    } else if (audio && audio.shown.participantId) {
      out.participantId = audio.shown.participantId;
    }
    return out;
  }

  renderSlots() {
    if (this.phase !== "joined" && this.phase !== "reconnecting" && this.phase !== "lobby") {
      return;
    }
    this.renderStage();
    this.participants.forEach(this.renderTile, this);
    this.scheduleViewReport(); // a slot may have moved into another tile: what is seen may have changed
  }

  /** For debugState: the slot map as the page shows it now. */
  slotSummary() {
    return Array.from(this.slots.values()).map(function (slot) {
      return {
        slotId: slot.id,
        kind: slot.kind,
        mid: slot.mid,
        participantId: slot.shown.participantId,
        producerId: slot.shown.producerId,
        pendingParticipantId: slot.pending ? slot.pending.participantId : null,
        streamIds: slot.streamIds.slice(),
        sequence: slot.sequence,
        presentedFrames: slot.presentedFrames,
        switches: slot.switches.slice(),
      };
    });
  }
}
