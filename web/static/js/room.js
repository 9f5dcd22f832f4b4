// The meeting room: pre-join check, then the session (stage, thumbnails, controls, panels) with
// automatic reconnection. Plain ES module; the page gives its data in data-* attributes of #room.

import { _, format, language, loadCatalog, number } from "./i18n.js";
import { LevelMeter, iceGathered, listDevices, openCamera, openMedia } from "./media.js";
import { Signaling, fetchJoinToken, measureRoundTrip } from "./signaling.js";
import { QualitySampler, inboundSummary, qualityLevel } from "./stats.js";

const STATS_INTERVAL_MS = 5000;
const DISCONNECTED_GRACE_MS = 3000;
const CONNECTING_LIMIT_MS = 20000;
const VIDEO_MAX_BITRATE = 900000;
// The login session ends after 30 idle minutes; a person sitting in a meeting is not idle, and needs
// the session to get a new join token if the network drops late in a long session.
const KEEP_ALIVE_MS = 5 * 60 * 1000;

function byId(id) {
  return document.getElementById(id);
}

/** A small element builder: el("li", {className: "x", text: "y"}, [children]). */
function el(tag, props, children) {
  const node = document.createElement(tag);
  const options = props || {};
  Object.keys(options).forEach(function (key) {
    const value = options[key];
    if (value === undefined || value === null) {
      return;
    }
    if (key === "text") {
      node.textContent = value;
    } else if (key === "className") {
      node.className = value;
    } else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "lang") {
      node.setAttribute(key, value);
    } else {
      node[key] = value;
    }
  });
  (children || []).forEach(function (child) {
    if (child) {
      node.appendChild(child);
    }
  });
  return node;
}

function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

function initials(name) {
  const words = String(name || "?").replace(/\(.*\)/, "").trim().split(/\s+/);
  return words.slice(0, 2).map(function (w) { return w.charAt(0).toUpperCase(); }).join("") || "?";
}

function setPressed(button, pressed) {
  if (button) {
    button.setAttribute("aria-pressed", pressed ? "true" : "false");
  }
}

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
    this.audioOnly = false;
    this.cameraBeforeAudioOnly = false;
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
    this.producers = new Map();
    this.consumersByMid = new Map();
    this.lastN = null;
    this.dominant = null;
    this.stageId = null;
    this.hands = [];
    this.ownQuality = null;
    this.offerChain = Promise.resolve();
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

  // -- start-up and the pre-join check ------------------------------------------------------
  async init() {
    await loadCatalog();
    this.bindControls();
    if (this.mayPublish) {
      await this.startPreview();
    }
    this.testConnection();
  }

  bindControls() {
    const self = this;
    function on(id, handler) {
      const node = byId(id);
      if (node) {
        node.addEventListener("click", function () { handler.call(self); });
      }
    }
    on("join-button", this.join);
    on("test-connection", this.testConnection);
    on("mic-button", this.toggleMic);
    on("camera-button", this.toggleCamera);
    on("hand-button", this.toggleHand);
    on("audio-only-button", this.toggleAudioOnly);
    on("leave-button", this.leave);
    on("lobby-leave-button", this.leave);
    on("sound-button", this.enableSound);
    const camera = byId("camera-select");
    if (camera) {
      camera.addEventListener("change", function () { self.changeCamera(camera.value); });
    }
    const mic = byId("mic-select");
    if (mic) {
      mic.addEventListener("change", function () { self.changeMicrophone(mic.value); });
    }
    // Browsers start audio only after a gesture: the first click or key press starts the level meter.
    ["pointerdown", "keydown"].forEach(function (type) {
      document.addEventListener(type, function () { self.meter.resume(); }, { once: true });
    });
    window.addEventListener("offline", function () { self.connectionLost("offline"); });
    window.addEventListener("online", function () {
      if (self.wake) {
        self.wake();
      }
    });
    window.addEventListener("pagehide", function () {
      if (self.signal) {
        self.signal.close();
      }
    });
  }

  async startPreview() {
    const opened = await openMedia(this.cameraId, this.micId, true, true);
    this.local.audio = opened.audio;
    this.local.video = opened.video;
    this.showMediaError(opened.error && !(opened.audio && opened.video) ? opened.error : null);
    if (this.local.video) {
      this.cameraId = this.local.video.getSettings().deviceId || "";
    }
    if (this.local.audio) {
      this.micId = this.local.audio.getSettings().deviceId || "";
    }
    this.showPreview();
    this.meter.attach(this.local.audio);
    await this.fillDevices();
  }

  showMediaError(error) {
    const node = byId("media-error");
    if (!node) {
      return;
    }
    if (!error) {
      node.hidden = true;
      node.textContent = "";
      return;
    }
    let message;
    if (error.name === "NotAllowedError" || error.name === "SecurityError") {
      message = _("The browser did not allow the camera or microphone. Allow them for this site and reload the page; you can still join to watch and listen.");
    } else if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
      message = _("No camera or microphone was found. You can still join to watch and listen.");
    } else if (error.name === "NotReadableError") {
      message = _("The camera or microphone is in use by another program.");
    } else {
      message = format(_("The camera or microphone could not be opened: %(reason)s"), { reason: error.message || error.name });
    }
    node.textContent = message;
    node.hidden = false;
  }

  showPreview() {
    const preview = byId("preview");
    if (!preview) {
      return;
    }
    if (this.local.video) {
      preview.srcObject = new MediaStream([this.local.video]);
      preview.hidden = false;
    } else {
      preview.srcObject = null;
    }
    byId("preview-off").hidden = Boolean(this.local.video);
  }

  async fillDevices() {
    let devices;
    try {
      devices = await listDevices();
    } catch (error) {
      return;
    }
    const fill = function (select, list, current, fallback, noneLabel) {
      if (!select) {
        return;
      }
      select.replaceChildren();
      list.forEach(function (device, index) {
        const label = device.label || format(fallback, { n: index + 1 });
        select.appendChild(el("option", { value: device.deviceId, text: label, selected: device.deviceId === current }));
      });
      if (!list.length) {
        select.appendChild(el("option", { value: "", text: noneLabel }));
      }
      select.disabled = !list.length;
    };
    fill(byId("camera-select"), devices.cameras, this.cameraId, _("Camera %(n)s"), _("No camera found"));
    fill(byId("mic-select"), devices.microphones, this.micId, _("Microphone %(n)s"), _("No microphone found"));
  }

  async changeCamera(deviceId) {
    this.cameraId = deviceId;
    if (this.local.video) {
      this.local.video.stop();
      this.local.video = null;
    }
    try {
      this.local.video = await openCamera(deviceId);
      this.showMediaError(null);
    } catch (error) {
      this.showMediaError(error);
    }
    this.showPreview();
  }

  async changeMicrophone(deviceId) {
    this.micId = deviceId;
    if (this.local.audio) {
      this.local.audio.stop();
      this.local.audio = null;
    }
    const opened = await openMedia(null, deviceId, false, true);
    this.local.audio = opened.audio;
    this.showMediaError(opened.error);
    this.meter.attach(this.local.audio);
  }

  setConnectionResult(state, text) {
    const output = byId("conn-result");
    if (output) {
      output.dataset.state = state;
      output.textContent = text;
    }
  }

  /** Get a join token, connect, and time a few acknowledged messages; keep the connection for joining. */
  async testConnection() {
    if (this.phase !== "prejoin") {
      return;
    }
    if (this.pendingSignal) {
      this.pendingSignal.close();
      this.pendingSignal = null;
    }
    this.setConnectionResult("pending", _("Testing…"));
    const button = byId("test-connection");
    button.disabled = true;
    try {
      const token = await fetchJoinToken(this.meetingId, this.csrf);
      const signal = await Signaling.connect(token);
      const rtt = await measureRoundTrip(signal, 3);
      if (rtt === null) {
        signal.close();
        this.setConnectionResult("bad", _("The server does not answer."));
        return;
      }
      const self = this;
      signal.on("disconnect", function () {
        if (self.pendingSignal === signal) {
          self.pendingSignal = null;
        }
      });
      this.pendingSignal = signal;
      const state = rtt > 400 ? "poor" : (rtt > 150 ? "fair" : "good");
      const label = state === "good" ? _("Good connection") : (state === "fair" ? _("Usable connection") : _("Weak connection"));
      this.setConnectionResult(state, format(_("%(quality)s: round trip %(ms)s ms"), { quality: label, ms: number(rtt) }));
    } catch (error) {
      if (error.fatal) {
        this.setConnectionResult("bad", _("You may not join this meeting now, or your login has ended. Reload the page."));
      } else {
        this.setConnectionResult("bad", format(_("Cannot reach the server (%(reason)s)."), { reason: error.code || error.message }));
      }
    } finally {
      button.disabled = false;
    }
  }

  // -- joining ------------------------------------------------------------------------------
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

  showView() {
    const phase = this.phase;
    const inSession = phase === "joined" || (phase === "reconnecting" && this.participantId !== null && !this.inLobby)
      || phase === "failed";
    byId("prejoin").hidden = phase !== "prejoin" && phase !== "joining";
    byId("lobby").hidden = !(phase === "lobby" || (phase === "reconnecting" && this.inLobby));
    byId("session").hidden = !inSession;
    byId("left").hidden = phase !== "left" && phase !== "removed";
    byId("removed-note").hidden = phase !== "removed";
  }

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
    const joined = await signal.call("join", this.audioOnly ? { last_n: 0 } : {});
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

  async onAdmitted(joined) {
    if (!this.inLobby || !joined || joined.lobby) {
      return;
    }
    try {
      await this.enterRoom(joined);
    } catch (error) {
      console.error("entering the room failed", error);
      this.connectionLost("admission");
      return;
    }
    if (this.phase === "lobby") {
      this.entered();
    }
  }

  onRemoved() {
    this.phase = "removed";
    this.shutDown();
    this.status(_("A moderator has removed you from this meeting."));
  }

  onRoomState(state) {
    byId("room-locked").hidden = !state.locked;
  }

  bindSignal(signal) {
    const self = this;
    const handlers = {
      participant_joined: this.onParticipantJoined,
      participant_left: this.onParticipantLeft,
      track_added: this.onTrackAdded,
      track_removed: this.onTrackRemoved,
      offer: this.onOffer,
      dominant_speaker: this.onDominantSpeaker,
      last_n: this.onLastN,
      mute_changed: this.onMuteChanged,
      transport_state: this.onTransportState,
      hands: this.onHands,
      agenda: this.onAgenda,
      quality: this.onQuality,
      admitted: this.onAdmitted,
      removed: this.onRemoved,
      room_state: this.onRoomState,
    };
    Object.keys(handlers).forEach(function (event) {
      signal.on(event, function (data) {
        if (self.signal !== signal || !data || typeof data !== "object") {
          return;
        }
        try {
          handlers[event].call(self, data);
        } catch (error) {
          console.error("handling " + event + " failed", error);
        }
      });
    });
    signal.on("disconnect", function (reason) {
      if (self.signal === signal && reason !== "io client disconnect") {
        self.connectionLost("signaling: " + reason);
      }
    });
  }

  applyJoin(joined) {
    this.participantId = joined.participant_id;
    this.me = joined.me || { participant_id: joined.participant_id };
    this.iceServers = Array.isArray(joined.ice_servers) ? joined.ice_servers : [];
    this.canPublish = this.mayPublish && Boolean(joined.permissions && joined.permissions.publish);
    this.forceMuted = Boolean(this.me.force_muted);
    if (this.forceMuted && this.local.audio) {
      this.micMuted = true;
      this.local.audio.enabled = false;
    }
    for (const id of Array.from(this.participants.keys())) {
      this.removeParticipant(id);
    }
    this.producers.clear();
    this.lastN = null;
    (joined.roster || []).forEach(this.addParticipant, this);
    (joined.tracks || []).forEach(this.onTrackAdded, this);
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
    const video = pc.addTransceiver(this.cameraOff ? "video" : (this.local.video || "video"), {
      direction: "sendonly",
      sendEncodings: [{ maxBitrate: VIDEO_MAX_BITRATE }],
    });
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

  async subscribe() {
    const pc = this.newPeerConnection("recv");
    this.recvPc = pc;
    const self = this;
    pc.addEventListener("track", function () { self.attachRemoteTracks(); });
    const reply = await this.signal.call("subscribe", {});
    if (!reply.ok) {
      const error = new Error(reply.error.message);
      error.code = reply.error.code;
      throw error;
    }
    if (reply.sdp) {
      await this.enqueueOffer(reply);
    }
  }

  enqueueOffer(offer) {
    const self = this;
    const pc = this.recvPc;
    const signal = this.signal;
    this.offerChain = this.offerChain.then(function () {
      return self.answerOffer(offer, pc, signal);
    }).catch(function (error) {
      console.error("negotiation failed", error);
      if (self.recvPc === pc) {
        self.connectionLost("negotiation");
      }
    });
    return this.offerChain;
  }

  async answerOffer(offer, pc, signal) {
    if (!pc || pc !== this.recvPc || !offer.sdp) {
      return;
    }
    this.consumersByMid = new Map((offer.consumers || []).map(function (c) { return [String(c.mid), c]; }));
    (offer.consumers || []).forEach(function (c) {
      if (!this.producers.has(c.producer_id)) {
        this.producers.set(c.producer_id, { producer_id: c.producer_id, participant_id: c.participant_id, kind: c.kind, muted: false });
      }
    }, this);
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGathered(pc);
    if (pc !== this.recvPc) {
      return;
    }
    const reply = await signal.call("answer", { sdp: pc.localDescription.sdp, revision: offer.revision });
    if (!reply.ok) {
      console.warn("answer refused", reply.error);
    }
    this.attachRemoteTracks();
  }

  /** Which remote track belongs to whom: the transceiver's mid, looked up in the latest offer. */
  attachRemoteTracks() {
    const pc = this.recvPc;
    if (!pc) {
      return;
    }
    const found = new Map();
    pc.getTransceivers().forEach(function (transceiver) {
      const consumer = transceiver.mid === null ? null : this.consumersByMid.get(String(transceiver.mid));
      if (!consumer || transceiver.currentDirection === "inactive" || transceiver.currentDirection === "stopped") {
        return;
      }
      const entry = found.get(consumer.participant_id) || {};
      entry[consumer.kind] = { track: transceiver.receiver.track, producerId: consumer.producer_id };
      found.set(consumer.participant_id, entry);
    }, this);
    this.participants.forEach(function (p, id) {
      const entry = found.get(id) || {};
      p.audio = entry.audio || null;
      p.video = entry.video || null;
      this.renderTile(p);
    }, this);
    this.renderStage();
  }

  watchConnection(pc, direction) {
    if (pc !== this.sendPc && pc !== this.recvPc) {
      return;
    }
    const state = pc.connectionState;
    const timer = this.pcTimers.get(direction);
    if (timer) {
      clearTimeout(timer);
      this.pcTimers.delete(direction);
    }
    const self = this;
    if (state === "failed") {
      this.connectionLost(direction + " connection failed");
    } else if (state === "disconnected" || state === "connecting") {
      const limit = state === "disconnected" ? DISCONNECTED_GRACE_MS : CONNECTING_LIMIT_MS;
      this.pcTimers.set(direction, setTimeout(function () {
        if ((pc === self.sendPc || pc === self.recvPc) && pc.connectionState === state) {
          self.connectionLost(direction + " connection " + state);
        }
      }, limit));
    }
  }

  // -- losing the connection and getting it back ---------------------------------------------
  connectionLost(reason) {
    if (this.phase !== "joined" && this.phase !== "lobby") {
      return;
    }
    console.warn("connection lost:", reason);
    this.phase = "reconnecting";
    this.showBanner(_("Connection lost. Reconnecting…"));
    this.root.dataset.connection = "reconnecting";
    this.reconnectLoop();
  }

  async reconnectLoop() {
    this.teardownConnection();
    let attempt = 0;
    while (this.phase === "reconnecting") {
      await this.pause(attempt === 0 ? 500 : Math.min(5000, 500 * Math.pow(2, attempt)));
      attempt += 1;
      if (this.phase !== "reconnecting") {
        return;
      }
      if (!navigator.onLine) {
        this.showBanner(_("Connection lost. Waiting for the network…"));
        continue;
      }
      let where;
      try {
        if (!this.cameraOff && this.canPublish && (!this.local.video || this.local.video.readyState === "ended")) {
          try {
            this.local.video = await openCamera(this.cameraId);
          } catch (error) {
            this.local.video = null;
          }
        }
        where = await this.connect();
      } catch (error) {
        this.teardownConnection();
        if (error.fatal) {
          this.phase = "failed";
          this.stopStats();
          this.showBanner(error.code === "removed" || error.code === "locked" ? this.joinErrorText(error)
            : _("You are no longer connected: your login may have ended or the meeting is closed. Reload the page."));
          return;
        }
        this.showBanner(format(_("Connection lost. Reconnecting… (attempt %(n)s)"), { n: number(attempt + 1) }));
        continue;
      }
      if (this.phase !== "reconnecting") {
        this.teardownConnection(); // the person left while we were reconnecting
        return;
      }
      this.phase = where === "lobby" ? "lobby" : "joined";
      this.reconnects += 1;
      this.root.dataset.connection = "ok";
      this.hideBanner();
      this.showView();
      this.status(_("Reconnected."));
      this.renderAll();
      return;
    }
  }

  /** Wait, but wake up early when the browser says the network is back. */
  pause(ms) {
    const self = this;
    return new Promise(function (resolve) {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      self.wake = done;
    });
  }

  teardownConnection() {
    if (this.signal) {
      this.signal.close();
      this.signal = null;
    }
    this.pcTimers.forEach(function (timer) { clearTimeout(timer); });
    this.pcTimers.clear();
    [this.sendPc, this.recvPc].forEach(function (pc) {
      if (pc) {
        pc.close();
      }
    });
    this.sendPc = null;
    this.recvPc = null;
    this.senders = { audio: null, video: null };
    this.consumersByMid = new Map();
    this.offerChain = Promise.resolve();
    this.sampler.reset();
  }

  showBanner(text) {
    byId("banner-text").textContent = text;
    byId("banner").hidden = false;
  }

  hideBanner() {
    byId("banner").hidden = true;
  }

  status(text) {
    byId("room-status").textContent = text;
  }

  // -- server events ------------------------------------------------------------------------
  addParticipant(info) {
    if (!info || !info.participant_id || info.participant_id === this.participantId) {
      return;
    }
    if (this.me && info.person_id === this.me.person_id) {
      return; // our own earlier connection, not yet timed out on the server
    }
    // The same person connecting again replaces their earlier connection.
    this.participants.forEach(function (p, id) {
      if (p.info.person_id === info.person_id) {
        this.removeParticipant(id);
      }
    }, this);
    this.participants.set(info.participant_id, {
      id: info.participant_id,
      info: info,
      audioMuted: Boolean(info.audio_muted),
      videoMuted: Boolean(info.video_muted),
      quality: info.quality && typeof info.quality === "object" && Object.keys(info.quality).length ? info.quality : null,
      audio: null,
      video: null,
      tile: null,
      audioEl: null,
    });
  }

  removeParticipant(id) {
    const p = this.participants.get(id);
    if (!p) {
      return;
    }
    this.participants.delete(id);
    if (p.tile) {
      p.tile.root.remove();
    }
    if (p.audioEl) {
      p.audioEl.srcObject = null;
      p.audioEl.remove();
    }
    if (this.stageId === id) {
      this.stageId = null;
    }
  }

  onParticipantJoined(info) {
    this.addParticipant(info);
    const p = this.participants.get(info.participant_id);
    if (p) {
      this.renderTile(p);
      this.status(format(_("%(name)s joined."), { name: info.full_name }));
    }
    this.renderRoster();
    this.renderStage();
  }

  onParticipantLeft(data) {
    const p = this.participants.get(data.participant_id);
    if (p) {
      this.removeParticipant(data.participant_id);
      this.status(format(_("%(name)s left."), { name: p.info.full_name }));
    }
    if (this.dominant === data.participant_id) {
      this.dominant = null;
    }
    this.renderRoster();
    this.renderStage();
  }

  onTrackAdded(track) {
    if (track && track.producer_id) {
      this.producers.set(track.producer_id, track);
    }
  }

  onTrackRemoved(track) {
    if (track && track.producer_id) {
      this.producers.delete(track.producer_id);
    }
  }

  onOffer(offer) {
    this.enqueueOffer(offer);
  }

  onDominantSpeaker(data) {
    this.dominant = data.participant_id || null;
    this.participants.forEach(this.renderTile, this);
    this.renderStage();
  }

  onLastN(data) {
    this.lastN = Array.isArray(data.producer_ids) ? new Set(data.producer_ids) : null;
    this.participants.forEach(this.renderTile, this);
    this.renderStage();
  }

  onMuteChanged(data) {
    if (data.participant_id === this.participantId) {
      if (data.by === "self") {
        return;
      }
      if (data.kind === "audio") {
        if (data.force_muted !== undefined) {
          this.forceMuted = Boolean(data.force_muted);
        }
        this.setMicMuted(Boolean(data.muted), false);
        this.status(data.muted ? _("A moderator has muted your microphone.") : _("A moderator has allowed you to speak again."));
      } else if (data.muted) {
        this.turnCameraOff(false);
        this.status(_("A moderator has turned off your camera."));
      }
      return;
    }
    const p = this.participants.get(data.participant_id);
    if (!p) {
      return;
    }
    if (data.kind === "audio") {
      p.audioMuted = Boolean(data.muted);
    } else {
      p.videoMuted = Boolean(data.muted);
    }
    this.renderTile(p);
    this.renderRoster();
    this.renderStage();
  }

  onTransportState(data) {
    if (data.state === "failed" || data.state === "closed") {
      this.connectionLost("server " + data.transport + " transport " + data.state);
    }
  }

  onHands(data) {
    this.hands = Array.isArray(data.queue) ? data.queue : [];
    const mine = this.participantId;
    this.handRaised = this.hands.some(function (h) { return h.participant_id === mine; });
    setPressed(byId("hand-button"), this.handRaised);
    this.renderHands();
    this.renderRoster();
  }

  onAgenda(data) {
    const list = byId("agenda-list");
    const items = Array.isArray(data.items) ? data.items : [];
    list.replaceChildren();
    let current = null;
    items.forEach(function (item) {
      const isCurrent = item.id === data.current_item_id;
      if (isCurrent) {
        current = item;
      }
      const details = [];
      const presenter = language === "km" && item.presenter_km ? item.presenter_km : item.presenter;
      if (presenter) {
        details.push(presenter);
      }
      if (item.planned_minutes) {
        details.push(format(_("%(n)s min"), { n: number(item.planned_minutes) }));
      }
      list.appendChild(el("li", { className: isCurrent ? "current" : "", "aria-current": isCurrent ? "step" : null }, [
        el("span", { className: "agenda-title", text: item.title }),
        details.length ? el("span", { className: "agenda-meta", text: details.join(" · ") }) : null,
      ]));
    });
    byId("agenda-empty").hidden = items.length > 0;
    const now = byId("agenda-current");
    now.hidden = !current;
    now.textContent = current ? format(_("Now: %(title)s"), { title: current.title }) : "";
  }

  onQuality(data) {
    const p = this.participants.get(data.participant_id);
    if (p) {
      p.quality = { rtt_ms: data.rtt_ms, loss_percent: data.loss_percent, bitrate_kbps: data.bitrate_kbps };
      this.renderRoster();
    }
  }

  // -- controls -----------------------------------------------------------------------------
  toggleMic() {
    this.setMicMuted(!this.micMuted, true);
  }

  setMicMuted(muted, tellServer) {
    this.micMuted = muted;
    if (this.local.audio) {
      this.local.audio.enabled = !muted;
    }
    if (tellServer && this.signal) {
      this.signal.call("mute", { kind: "audio", muted: muted });
    }
    this.renderControls();
    this.renderSelf();
    this.renderRoster();
  }

  toggleCamera() {
    if (this.cameraOff) {
      this.turnCameraOn();
    } else {
      this.turnCameraOff(true);
    }
  }

  async turnCameraOff(tellServer) {
    this.cameraOff = true;
    const track = this.local.video;
    this.local.video = null;
    if (this.senders.video) {
      await this.senders.video.replaceTrack(null).catch(function () {});
    }
    if (track) {
      track.stop(); // the camera light goes out
    }
    if (tellServer && this.signal) {
      this.signal.call("mute", { kind: "video", muted: true });
    }
    this.renderControls();
    this.renderSelf();
    this.renderRoster();
  }

  async turnCameraOn() {
    let track;
    try {
      track = await openCamera(this.cameraId);
    } catch (error) {
      this.status(_("The camera could not be opened."));
      return;
    }
    this.cameraOff = false;
    this.local.video = track;
    if (this.senders.video) {
      await this.senders.video.replaceTrack(track).catch(function () {});
    }
    if (this.signal) {
      this.signal.call("mute", { kind: "video", muted: false });
    }
    this.renderControls();
    this.renderSelf();
    this.renderRoster();
  }

  async toggleHand() {
    if (!this.signal) {
      return;
    }
    const raise = !this.handRaised;
    const reply = await this.signal.call(raise ? "raise_hand" : "lower_hand", {});
    if (reply.ok) {
      this.handRaised = raise;
      setPressed(byId("hand-button"), raise);
      this.status(raise ? _("Your hand is raised.") : _("Your hand is lowered."));
    } else if (reply.error && reply.error.code === "invalid") {
      this.status(_("Raising a hand is not available in this meeting yet."));
    } else {
      this.status(_("The request did not reach the server. Try again."));
    }
  }

  async toggleAudioOnly() {
    this.audioOnly = !this.audioOnly;
    if (this.signal) {
      this.signal.call("set_last_n", { n: this.audioOnly ? 0 : this.defaultLastN });
    }
    if (this.audioOnly) {
      this.cameraBeforeAudioOnly = !this.cameraOff;
      if (!this.cameraOff && this.canPublish) {
        await this.turnCameraOff(true);
      }
      this.status(_("Audio only: video is paused to save the connection."));
    } else {
      if (this.cameraBeforeAudioOnly && this.canPublish) {
        await this.turnCameraOn();
      }
      this.status(_("Video is back on."));
    }
    this.root.dataset.audioOnly = this.audioOnly ? "true" : "false";
    this.renderControls();
    this.participants.forEach(this.renderTile, this);
    this.renderStage();
  }

  enableSound() {
    this.participants.forEach(function (p) {
      if (p.audioEl) {
        p.audioEl.play().catch(function () {});
      }
    });
    byId("sound-button").hidden = true;
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

  // -- connection quality -------------------------------------------------------------------
  startStats() {
    const self = this;
    this.stopStats();
    this.statsTimer = setInterval(function () { self.reportStats(); }, STATS_INTERVAL_MS);
    this.keepAliveTimer = setInterval(function () {
      fetch("/api/me", { credentials: "same-origin", cache: "no-store" }).catch(function () {});
    }, KEEP_ALIVE_MS);
  }

  stopStats() {
    if (this.statsTimer) {
      clearInterval(this.statsTimer);
      this.statsTimer = null;
    }
    if (this.keepAliveTimer) {
      clearInterval(this.keepAliveTimer);
      this.keepAliveTimer = null;
    }
  }

  async reportStats() {
    if (this.phase !== "joined" || !this.signal) {
      return;
    }
    const signal = this.signal;
    this.ownQuality = await this.sampler.sample(this.sendPc, this.recvPc);
    this.renderRoster();
    // The acknowledgement doubles as a heartbeat: two missing in a row mean the link is gone.
    const reply = await signal.call("stats", this.ownQuality, 4000);
    if (signal !== this.signal) {
      return;
    }
    if (reply.error && reply.error.code === "timeout") {
      this.missedAcks += 1;
      if (this.missedAcks >= 2) {
        this.connectionLost("no answer to heartbeat");
      }
    } else {
      this.missedAcks = 0;
    }
  }

  qualityText(summary) {
    const level = qualityLevel(summary);
    const labels = { good: _("Good"), fair: _("Fair"), poor: _("Poor"), unknown: _("Measuring…") };
    const parts = [labels[level]];
    if (summary) {
      if (summary.rtt_ms !== null && summary.rtt_ms !== undefined) {
        parts.push(format(_("%(value)s ms"), { value: number(summary.rtt_ms) }));
      }
      if (summary.loss_percent !== null && summary.loss_percent !== undefined) {
        parts.push(format(_("loss %(value)s"), { value: number(summary.loss_percent, 1) + "%" }));
      }
      if (summary.bitrate_kbps !== null && summary.bitrate_kbps !== undefined) {
        parts.push(format(_("%(value)s kbit/s"), { value: number(summary.bitrate_kbps) }));
      }
    }
    return { level: level, text: parts.join(" · ") };
  }

  // -- rendering ----------------------------------------------------------------------------
  renderAll() {
    this.renderControls();
    this.renderSelf();
    this.participants.forEach(this.renderTile, this);
    this.renderRoster();
    this.renderHands();
    this.renderStage();
  }

  renderControls() {
    const mic = byId("mic-button");
    const camera = byId("camera-button");
    const hand = byId("hand-button");
    [mic, camera, hand].forEach(function (button) {
      if (button) {
        button.hidden = !this.canPublish;
      }
    }, this);
    setPressed(mic, this.micMuted);
    setPressed(camera, this.cameraOff);
    setPressed(hand, this.handRaised);
    setPressed(byId("audio-only-button"), this.audioOnly);
    if (mic) {
      mic.disabled = !this.local.audio || Boolean(this.forceMuted);
      mic.title = this.forceMuted ? _("A moderator has muted you. Raise your hand to ask to speak.")
        : (this.micMuted ? _("Your microphone is off. Press to speak.") : _("Your microphone is on. Press to mute."));
    }
    if (camera) {
      camera.title = this.cameraOff ? _("Your camera is off. Press to start it.") : _("Your camera is on. Press to stop it.");
    }
  }

  /** The tile of the person at this endpoint, first among the thumbnails. */
  renderSelf() {
    if (!this.selfTile) {
      this.selfTile = this.makeTile(_("You"), "");
      this.selfTile.root.classList.add("self");
      this.selfTile.root.dataset.self = "true";
      byId("thumbs").prepend(this.selfTile.root);
    }
    const tile = this.selfTile;
    const showVideo = Boolean(this.local.video) && !this.cameraOff;
    const track = showVideo ? this.local.video : null;
    if (tile.track !== track) {
      tile.track = track;
      tile.video.srcObject = track ? new MediaStream([track]) : null;
    }
    tile.root.dataset.video = showVideo ? "on" : "off";
    tile.muted.hidden = !this.micMuted || !this.canPublish;
    tile.placeholder.textContent = initials(this.me ? this.me.full_name : "");
    tile.office.textContent = this.me ? this.officeName(this.me) : "";
  }

  officeName(info) {
    return (language === "km" && info.office_name_km) ? info.office_name_km : (info.office_name || "");
  }

  makeTile(name, office) {
    const video = el("video", { autoplay: true, muted: true, playsInline: true });
    const placeholder = el("span", { className: "tile-placeholder", "aria-hidden": "true" });
    const muted = el("span", { className: "tile-muted", text: _("Muted"), hidden: true });
    const hand = el("span", { className: "tile-hand", text: _("Hand raised"), hidden: true });
    const nameNode = el("span", { className: "tile-name", text: name });
    const officeNode = el("span", { className: "tile-office", text: office });
    const root = el("li", { className: "tile" }, [
      video, placeholder,
      el("span", { className: "tile-badges" }, [muted, hand]),
      el("span", { className: "tile-label" }, [nameNode, officeNode]),
    ]);
    return { root: root, video: video, placeholder: placeholder, muted: muted, hand: hand, name: nameNode, office: officeNode, track: null };
  }

  videoVisible(p) {
    if (!p.video || p.videoMuted || this.audioOnly) {
      return false;
    }
    return !this.lastN || this.lastN.has(p.video.producerId);
  }

  renderTile(p) {
    if (!p.tile) {
      p.tile = this.makeTile(p.info.full_name, this.officeName(p.info));
      p.tile.root.dataset.participantId = p.id;
      byId("thumbs").appendChild(p.tile.root);
    }
    const tile = p.tile;
    const visible = this.videoVisible(p);
    const track = visible ? p.video.track : null;
    if (tile.track !== track) {
      tile.track = track;
      tile.video.srcObject = track ? new MediaStream([track]) : null;
    }
    tile.root.dataset.video = visible ? "on" : "off";
    tile.root.classList.toggle("speaking", this.dominant === p.id);
    tile.placeholder.textContent = initials(p.info.full_name);
    tile.muted.hidden = !p.audioMuted;
    tile.hand.hidden = !this.hands.some(function (h) { return h.participant_id === p.id; });
    this.renderAudio(p);
  }

  /** Remote sound plays through an <audio> element per participant (never muted: muted reads level 0). */
  renderAudio(p) {
    const track = p.audio ? p.audio.track : null;
    if (!p.audioEl) {
      p.audioEl = el("audio", { autoplay: true });
      p.audioEl.dataset.participantId = p.id;
      byId("audio-sink").appendChild(p.audioEl);
    }
    const current = p.audioEl.srcObject ? p.audioEl.srcObject.getAudioTracks()[0] : null;
    if (current !== track) {
      p.audioEl.srcObject = track ? new MediaStream([track]) : null;
      if (track) {
        p.audioEl.play().catch(function () {
          byId("sound-button").hidden = false;
        });
      }
    }
  }

  chooseStage() {
    const participants = this.participants;
    if (this.dominant && participants.has(this.dominant)) {
      return this.dominant;
    }
    const current = this.stageId ? participants.get(this.stageId) : null;
    if (current && this.videoVisible(current)) {
      return this.stageId;
    }
    let chosen = current ? this.stageId : null;
    participants.forEach(function (p, id) {
      if (chosen === null || (this.videoVisible(p) && !this.videoVisible(participants.get(chosen)))) {
        chosen = id;
      }
    }, this);
    return chosen;
  }

  renderStage() {
    const stage = byId("stage");
    const video = byId("stage-video");
    const name = byId("stage-name");
    const placeholder = byId("stage-placeholder");
    this.stageId = this.chooseStage();
    const p = this.stageId ? this.participants.get(this.stageId) : null;
    const track = p && this.videoVisible(p) ? p.video.track : null;
    if (this.stageTrack !== track) {
      this.stageTrack = track;
      video.srcObject = track ? new MediaStream([track]) : null;
    }
    stage.dataset.empty = track ? "false" : "true";
    stage.dataset.participantId = p ? p.id : "";
    this.participants.forEach(function (q, id) {
      if (q.tile) {
        q.tile.root.classList.toggle("on-stage", id === this.stageId);
      }
    }, this);
    if (!p) {
      placeholder.textContent = _("Waiting for other participants…");
      name.textContent = "";
      return;
    }
    name.replaceChildren(el("strong", { text: p.info.full_name }), el("span", { text: this.officeName(p.info) }));
    if (p.audioMuted) {
      name.appendChild(el("span", { className: "tile-muted", text: _("Muted") }));
    }
    if (this.audioOnly) {
      name.appendChild(el("span", { className: "pill", text: _("Audio only") }));
    }
    placeholder.textContent = track ? "" : initials(p.info.full_name);
  }

  renderRoster() {
    const list = byId("roster");
    if (!list) {
      return;
    }
    list.replaceChildren();
    const entries = [];
    if (this.me && this.participantId) {
      entries.push({ info: this.me, self: true, audioMuted: this.micMuted, quality: this.ownQuality, id: this.participantId });
    }
    this.participants.forEach(function (p) {
      entries.push({ info: p.info, self: false, audioMuted: p.audioMuted, quality: p.quality, id: p.id });
    });
    const hands = this.hands;
    entries.forEach(function (entry) {
      const quality = this.qualityText(entry.quality);
      const handUp = hands.some(function (h) { return h.participant_id === entry.id; });
      const name = entry.self ? format(_("%(name)s (you)"), { name: entry.info.full_name }) : entry.info.full_name;
      const observer = Array.isArray(entry.info.roles) && entry.info.roles.length === 1 && entry.info.roles[0] === "observer";
      list.appendChild(el("li", { "data-participant-id": entry.id, className: entry.id === this.dominant ? "speaking" : "" }, [
        el("span", { className: "roster-name", text: name }),
        el("span", { className: "roster-office", text: this.officeName(entry.info) }),
        el("span", { className: "roster-state" }, [
          observer ? el("span", { className: "pill", text: _("Observer") }) : null,
          !observer && entry.audioMuted ? el("span", { className: "pill muted-pill", text: _("Muted") }) : null,
          handUp ? el("span", { className: "pill hand-pill", text: _("Hand raised") }) : null,
          el("span", { className: "quality", "data-level": quality.level, text: quality.text }),
        ]),
      ]));
    }, this);
    byId("roster-count").textContent = "(" + number(entries.length) + ")";
  }

  renderHands() {
    const list = byId("hands-list");
    list.replaceChildren();
    this.hands.forEach(function (h) {
      const p = this.participants.get(h.participant_id);
      const office = p ? this.officeName(p.info) : (h.participant_id === this.participantId && this.me ? this.officeName(this.me) : "");
      list.appendChild(el("li", {}, [
        el("span", { text: h.full_name || (p ? p.info.full_name : "") }),
        office ? el("span", { className: "muted", text: " — " + office }) : null,
      ]));
    }, this);
    byId("hands-empty").hidden = this.hands.length > 0;
    this.participants.forEach(function (p) {
      if (p.tile) {
        p.tile.hand.hidden = !this.hands.some(function (h) { return h.participant_id === p.id; });
      }
    }, this);
  }

  // -- for tests and technicians: what is being received ------------------------------------
  async debugState() {
    const inbound = await inboundSummary(this.recvPc);
    const byMid = this.consumersByMid;
    return {
      phase: this.phase,
      participantId: this.participantId,
      reconnects: this.reconnects,
      micMuted: this.micMuted,
      cameraOff: this.cameraOff,
      audioOnly: this.audioOnly,
      sendState: this.sendPc ? this.sendPc.connectionState : null,
      recvState: this.recvPc ? this.recvPc.connectionState : null,
      participants: Array.from(this.participants.values()).map(function (p) {
        return { id: p.id, name: p.info.full_name, audioMuted: p.audioMuted, videoMuted: p.videoMuted };
      }),
      inbound: inbound.map(function (s) {
        const consumer = s.mid === null ? null : byMid.get(s.mid);
        return Object.assign({ participantId: consumer ? consumer.participant_id : null }, s);
      }),
    };
  }
}

const root = byId("room");
if (root) {
  const room = new Room(root);
  window.cabinetRoom = room;
  room.init().catch(function (error) {
    console.error("the meeting room failed to start", error);
  });
}
