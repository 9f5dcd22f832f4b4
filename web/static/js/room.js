// The meeting room: pre-join check, then the session (stage, thumbnails, controls, panels) with
// automatic reconnection. Plain ES module; the page gives its data in data-* attributes of #room.
//
// This is the entry point and controller: the Room's state, start-up, joining and leaving. The rest of
// its methods live in modules named for what they do, mixed into the class below:
//   room-prejoin.js      the pre-join check (preview, devices, connection test)
//   room-negotiation.js  joining and publishing with the SFU
//   room-slots.js        receiving: the one offer with its slots, who each slot shows from which frame on
//   room-events.js       server events and the participant list
//   room-connection.js   reconnection, heartbeat and keep-alive
//   room-controls.js     the buttons and page-level listeners
//   room-links.js        poor links: the site's choice, the tiles it shows, the links' states
//   room-view.js         rendering of stage, thumbnails, panels, banner and status

import { _, format, loadCatalog } from "./i18n.js";
import { LevelMeter } from "./media.js";
import { QualitySampler, inboundSummary } from "./stats.js";
import { byId } from "./dom.js";
import { RoomConnection } from "./room-connection.js";
import { RoomControls } from "./room-controls.js";
import { RoomEvents } from "./room-events.js";
import { RoomLinks, storedQuality } from "./room-links.js";
import { RoomNegotiation } from "./room-negotiation.js";
import { RoomPrejoin } from "./room-prejoin.js";
import { RoomSlots } from "./room-slots.js";
import { RoomView } from "./room-view.js";

class Room {
  constructor(root) {
    this.root = root;
    this.meetingId = root.dataset.meetingId;
    this.csrf = root.dataset.csrf;
    this.mayPublish = root.dataset.mayPublish === "true";
    this.defaultLastN = parseInt(root.dataset.lastN, 10) || 9;
    this.phase = "prejoin";
    this.local = { audio: null, video: null };
    this.cameraId = "";
    this.micId = "";
    this.micMuted = false;
    this.cameraOff = false;
    // What the site receives: "auto", "low" or "audio" (room-links.js), remembered on this device.
    this.quality = storedQuality();
    this.cameraBeforeAudioOnly = false;
    // What the server says of the links: this site's slots, its own link, every site's link.
    this.slotStates = {};
    this.jitterTarget = null;  // ms the video receivers hold frames for (room-links.js)
    this.recentRttMs = [];  // the last three round trips the server reported (room-links.js)
    this.ownLink = null;
    this.links = {};
    this.viewSent = null;
    this.viewTimer = null;
    this.thumbsHidden = false;
    this.handRaised = false;
    this.canPublish = this.mayPublish;
    this.signal = null;
    this.pendingSignal = null;
    this.sendPc = null;
    this.recvPc = null;
    this.senders = { audio: null, video: null };
    this.iceServers = [];
    this.participantId = null;
    this.me = null;
    this.participants = new Map();
    // Receiving: slot id -> slot (room-slots.js), and the same slots by the transceivers' mids.
    this.slots = new Map();
    this.slotsByMid = new Map();
    this.dominant = null;
    this.stageId = null;
    this.spotlight = null;
    this.ownPin = null;
    this.mayModerate = false;
    this.hands = [];
    this.ownQuality = null;
    this.statsTimer = null;
    this.missedAcks = 0;
    this.pcTimers = new Map();
    this.wake = null;
    this.reconnects = 0;
    this.inLobby = false;
    this.forceMuted = false;
    this.sampler = new QualitySampler();
    this.silentReadings = 0;
    const self = this;
    this.meter = new LevelMeter(function (level) {
      const meter = byId("mic-level");
      if (meter) {
        meter.value = level;
      }
      // Digital silence for two seconds: the browser waits for a click, or the microphone is dead.
      self.silentReadings = level > 0 ? 0 : self.silentReadings + 1;
      const hint = byId("meter-hint");
      if (hint) {
        hint.hidden = self.silentReadings < 20;
      }
    });
  }

  // -- start-up -------------------------------------------------------------------------------
  async init() {
    await loadCatalog();
    this.bindControls();
    this.bindQualityChoice();
    this.startViewWatch();
    if (this.mayPublish) {
      await this.startPreview();
    }
    this.testConnection();
  }

  // -- joining and leaving --------------------------------------------------------------------
  async join() {
    if (this.phase !== "prejoin") {
      return;
    }
    this.phase = "joining";
    this.meter.resume();
    const button = byId("join-button");
    button.disabled = true;
    this.status(_("Joining…"));
    let where;
    try {
      where = await this.connect();
    } catch (error) {
      this.teardownConnection();
      this.phase = "prejoin";
      button.disabled = false;
      const node = byId("media-error");
      node.textContent = this.joinErrorText(error);
      node.hidden = false;
      this.status("");
      return;
    }
    this.meter.detach();
    const preview = byId("preview");
    if (preview) {
      preview.srcObject = null;
    }
    this.startStats();
    if (where === "lobby") {
      this.phase = "lobby";
      this.showView();
      this.status(_("Waiting to be let in."));
      const title = byId("lobby-title");
      title.tabIndex = -1;
      title.focus();
      return;
    }
    this.entered();
  }

  /** The session view is shown: after joining, or after being let in from the lobby. */
  entered() {
    this.phase = "joined";
    this.showView();
    this.status(format(_("You have joined %(title)s."), { title: byId("room-title").textContent }));
    this.renderAll();
    const first = document.querySelector("#session .controls button:not([hidden])");
    if (first) {
      first.focus();
    }
  }

  async leave() {
    if (["joined", "reconnecting", "lobby", "failed"].indexOf(this.phase) < 0) {
      return;
    }
    const signal = this.signal;
    this.phase = "left";
    this.stopStats();
    if (signal) {
      await signal.call("leave", {}, 3000);
    }
    this.shutDown();
    this.status(_("You have left the meeting."));
  }

  /** Close everything: connections, devices, the session view. */
  shutDown() {
    this.stopStats();
    this.teardownConnection();
    for (const id of Array.from(this.participants.keys())) {
      this.removeParticipant(id);
    }
    [this.local.audio, this.local.video].forEach(function (track) {
      if (track) {
        track.stop();
      }
    });
    this.local = { audio: null, video: null };
    this.meter.close();
    this.hideBanner();
    this.showView();
    const heading = byId("left-title");
    heading.tabIndex = -1;
    heading.focus();
  }

  // -- for tests and technicians: what is being received --------------------------------------
  async debugState() {
    const inbound = await inboundSummary(this.recvPc);
    const byMid = this.slotsByMid;
    return {
      phase: this.phase,
      participantId: this.participantId,
      reconnects: this.reconnects,
      micMuted: this.micMuted,
      cameraOff: this.cameraOff,
      audioOnly: this.quality === "audio",
      quality: this.quality,
      thumbsHidden: this.thumbsHidden,
      // The server's word on this site's slots and link, every site's link, and the view last reported.
      slotStates: this.slotStates,
      ownLink: this.ownLink,
      links: this.links,
      viewSent: this.viewSent ? JSON.parse(this.viewSent) : null,
      viewError: this.viewError || null,
      sendState: this.sendPc ? this.sendPc.connectionState : null,
      recvState: this.recvPc ? this.recvPc.connectionState : null,
      participants: Array.from(this.participants.values()).map(function (p) {
        return { id: p.id, name: p.info.full_name, audioMuted: p.audioMuted, videoMuted: p.videoMuted, link: p.link || null };
      }),
      // Who is on the stage and in each slot as the page shows it now (a switch counts from the first
      // frame of the new source on), and what arrives per slot.
      stageParticipantId: this.stageId,
      spotlight: this.spotlight,
      ownPin: this.ownPin,
      slots: this.slotSummary(),
      inbound: inbound.map(function (s) {
        const slot = s.mid === null ? null : byMid.get(s.mid);
        return Object.assign({ slotId: slot ? slot.id : null, participantId: slot ? slot.shown.participantId : null }, s);
      }),
    };
  }
}

/** Copy the methods of each part into the Room class; a name defined twice is a mistake. */
function mixIn(target, parts) {
  parts.forEach(function (part) {
    Object.getOwnPropertyNames(part.prototype).forEach(function (name) {
      if (name === "constructor") {
        return;
      }
      if (Object.prototype.hasOwnProperty.call(target.prototype, name)) {
        throw new Error("Room." + name + " is defined twice");
      }
      Object.defineProperty(target.prototype, name, Object.getOwnPropertyDescriptor(part.prototype, name));
    });
  });
}

mixIn(Room, [RoomPrejoin, RoomNegotiation, RoomSlots, RoomEvents, RoomConnection, RoomControls, RoomView, RoomLinks]);

const root = byId("room");
if (root) {
  const room = new Room(root);
  window.cabinetRoom = room;
  room.init().catch(function (error) {
    console.error("the meeting room failed to start", error);
  });
}
