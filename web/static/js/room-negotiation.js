// The negotiation with the SFU: joining and publishing the local tracks (receiving is room-slots.js:
// one offer from the server, answered once).
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format } from "./i18n.js";
import { iceGathered } from "./media.js";
import { Signaling, fetchJoinToken } from "./signaling.js";
import { SessionPanel } from "./session-panel.js";

const VIDEO_MAX_BITRATE = 900000;
// Three temporal layers (VP8 L1T3): the server forwards 7.5, 15 or 30 frames per second to each site
// by what its link carries, from this one stream (media/allocation.py).
const VIDEO_SCALABILITY = "L1T3";

/** The camera's transceiver with temporal layers; without them where the browser refuses L1T3. */
function addVideoTransceiver(pc, trackOrKind) {
  const init = { direction: "sendonly" };
  try {
    return pc.addTransceiver(trackOrKind, Object.assign({}, init,
      { sendEncodings: [{ maxBitrate: VIDEO_MAX_BITRATE, scalabilityMode: VIDEO_SCALABILITY }] }));
  } catch (error) {
    return pc.addTransceiver(trackOrKind, Object.assign({}, init, { sendEncodings: [{ maxBitrate: VIDEO_MAX_BITRATE }] }));
  }
}

export class RoomNegotiation {
  joinErrorText(error) {
    if (error.code === "locked") {
      return _("The meeting is locked: no one else can join now. Ask the Secretariat to unlock it.");
    }
    if (error.code === "removed") {
      return _("A moderator has removed you from this meeting; you cannot join it again.");
    }
    if (error.fatal) {
      return _("You may not join this meeting now, or your login has ended. Reload the page.");
    }
    return format(_("Joining failed (%(reason)s). Try again."), { reason: error.code || error.message });
  }

  /** Connect (or reuse the tested connection), join, publish and subscribe. Throws on failure. */
  async connect() {
    let signal = this.pendingSignal;
    this.pendingSignal = null;
    if (!signal || !signal.connected) {
      if (signal) {
        signal.close();
      }
      const token = await fetchJoinToken(this.meetingId, this.csrf);
      signal = await Signaling.connect(token);
    }
    this.signal = signal;
    this.bindSignal(signal);
    // The site's choice goes with the join: the first offer already leaves out what it rules out.
    const joined = await signal.call("join", { quality: this.quality });
    if (!joined.ok) {
      const error = new Error(joined.error.message);
      error.code = joined.error.code;
      error.fatal = ["locked", "removed", "forbidden", "token_invalid"].indexOf(error.code) >= 0;
      throw error;
    }
    this.participantId = joined.participant_id;
    this.me = joined.me || { participant_id: joined.participant_id };
    if (joined.lobby) {
      this.inLobby = true;
      return "lobby";
    }
    await this.enterRoom(joined);
    return "room";
  }

  /** In the room (at once, or once let in): take the room's state, publish and subscribe. */
  async enterRoom(joined) {
    const signal = this.signal;
    this.inLobby = false;
    this.applyJoin(joined);
    this.sessionPanel = this.sessionPanel || new SessionPanel(document.getElementById("session-panel"));
    this.sessionPanel.attach(signal, joined);
    if (this.canPublish && this.quality === "audio" && !this.cameraOff) {
      await this.cameraFollowsQuality("auto", "audio"); // before publishing: the server is told below
    }
    if (this.canPublish) {
      if (this.micMuted) {
        await signal.call("mute", { kind: "audio", muted: true });
      }
      if (this.cameraOff || !this.local.video) {
        await signal.call("mute", { kind: "video", muted: true });
      }
      await this.publish();
    }
    await this.subscribe();
    this.missedAcks = 0;
  }

  applyJoin(joined) {
    this.onRecording(joined.recording || { state: "off" }); // the state now; the event says when it changes
    this.participantId = joined.participant_id;
    this.me = joined.me || { participant_id: joined.participant_id };
    this.iceServers = Array.isArray(joined.ice_servers) ? joined.ice_servers : [];
    this.canPublish = this.mayPublish && Boolean(joined.permissions && joined.permissions.publish);
    this.forceMuted = Boolean(this.me.force_muted);
    if (this.forceMuted && this.local.audio) {
      this.micMuted = true;
      this.local.audio.enabled = false;
    }
    this.ownPin = null; // a new connection: the server knows no pin of ours
    for (const id of Array.from(this.participants.keys())) {
      this.removeParticipant(id);
    }
    this.spotlight = joined.spotlight || null;
    this.mayModerate = Boolean(joined.permissions && joined.permissions.moderate);
    (joined.roster || []).forEach(this.addParticipant, this);
    this.dominant = joined.dominant_speaker || null;
    if (joined.hands) {
      this.onHands(joined.hands);
    }
    if (joined.agenda) {
      this.onAgenda(joined.agenda);
    }
    if (joined.room_state) {
      this.onRoomState(joined.room_state);
    }
    this.onLinks({ sites: joined.links || {} });
  }

  newPeerConnection(direction) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    const self = this;
    pc.addEventListener("connectionstatechange", function () { self.watchConnection(pc, direction); });
    return pc;
  }

  async publish() {
    const pc = this.newPeerConnection("send");
    this.sendPc = pc;
    const audio = pc.addTransceiver(this.local.audio || "audio", { direction: "sendonly" });
    const video = addVideoTransceiver(pc, this.cameraOff ? "video" : (this.local.video || "video"));
    this.senders = { audio: audio.sender, video: video.sender };
    if (this.local.audio) {
      this.local.audio.enabled = !this.micMuted;
    }
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const reply = await this.signal.call("publish", { sdp: pc.localDescription.sdp });
    if (!reply.ok) {
      if (reply.error.code === "forbidden") {
        this.canPublish = false;
        pc.close();
        this.sendPc = null;
        this.renderControls();
        return;
      }
      const error = new Error(reply.error.message);
      error.code = reply.error.code;
      throw error;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  }
}
