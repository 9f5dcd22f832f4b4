// The moderators' console: joins the meeting's signaling room as a participant that neither publishes
// nor subscribes (no camera, no microphone), keeps a live board of every expected site from the
// server's events, and sends moderation requests (which the server checks and enforces).
//
//   console.js         this controller: the connection, the live state, actions and their errors
//   console-board.js   the board of sites and people (status, quality, microphone, per-row actions)
//   console-panels.js  lock and lobby toggles, raised hands, lobby, agenda

import { _, format, loadCatalog } from "./i18n.js";
import { Signaling, bindServerEvents, fetchJoinToken, wakeablePause } from "./signaling.js";
import { SessionPanel } from "./session-panel.js";
import { byId } from "./dom.js";
import { ConsoleBoard } from "./console-board.js";
import { ConsolePanels } from "./console-panels.js";
import { ConsoleRecording } from "./console-recording.js";

const HEARTBEAT_MS = 5000;
const KEEP_ALIVE_MS = 5 * 60 * 1000;
const FATAL = ["locked", "removed", "forbidden", "token_invalid"];

class Console {
  constructor(root) {
    this.root = root;
    this.meetingId = root.dataset.meetingId;
    this.csrf = root.dataset.csrf;
    this.mePersonId = parseInt(root.dataset.mePersonId, 10);
    this.phase = "connecting";
    this.signal = null;
    this.participantId = null;
    this.participants = new Map(); // participant_id -> {info, quality, audioMuted, forceMuted}
    this.links = {}; // participant_id -> the site's link as the server adapts to it (signaling/links.py)
    this.presence = new Map(); // person_id -> {status, since, full_name, office_id}
    this.hands = [];
    this.lobby = [];
    this.agenda = null;
    this.roomState = { locked: false, lobby_enabled: false };
    this.missed = 0;
    this.wake = null;
    this.reconnects = 0;
    this.alarms = new Map(); // code -> {code, message, since}: the server's storage is failing
    this.board = new ConsoleBoard(this);
    this.panels = new ConsolePanels(this);
    this.recording = new ConsoleRecording(this);
  }

  async init() {
    await loadCatalog();
    this.board.build();
    this.panels.bind();
    const self = this;
    byId("reconnect-button").addEventListener("click", function () { self.reconnect(); });
    window.addEventListener("offline", function () { self.connectionLost("offline"); });
    window.addEventListener("online", function () { if (self.wake) { self.wake(); } });
    window.addEventListener("pagehide", function () { if (self.signal) { self.signal.close(); } });
    setInterval(function () { self.heartbeat(); }, HEARTBEAT_MS);
    setInterval(function () {
      fetch("/api/me", { credentials: "same-origin", cache: "no-store" }).catch(function () {});
    }, KEEP_ALIVE_MS);
    this.render();
    await this.reconnectLoop(true);
  }

  // -- the connection -------------------------------------------------------------------------
  async connect() {
    const token = await fetchJoinToken(this.meetingId, this.csrf);
    const signal = await Signaling.connect(token);
    this.signal = signal;
    this.bind(signal);
    // Watch only: no video is forwarded to the console (last-N 0), and it never publishes.
    const joined = await signal.call("join", { last_n: 0, client: "console" });
    if (!joined.ok) {
      const error = new Error(joined.error.message);
      error.code = joined.error.code;
      error.fatal = FATAL.indexOf(error.code) >= 0;
      throw error;
    }
    if (!joined.permissions || !joined.permissions.moderate) {
      const error = new Error("not a moderator");
      error.code = "forbidden";
      error.fatal = true;
      throw error;
    }
    this.participantId = joined.participant_id;
    this.participants.clear();
    (joined.roster || []).forEach(this.addParticipant, this);
    this.lobby = [];
    this.onHands(joined.hands || { queue: [] });
    this.onAgenda(joined.agenda || { items: [], current_item_id: null });
    this.onRoomState(joined.room_state || { locked: false, lobby_enabled: false });
    this.onRecording(joined.recording || { state: "off" });
    this.onLinks({ sites: joined.links || {} });
    this.sessionPanel = this.sessionPanel || new SessionPanel(document.getElementById("session-panel"));
    this.sessionPanel.attach(signal, joined);
    this.checkStorage();
  }

  /** The storage problems that last now (a full disk...), from /api/health; ``alarm`` events follow. */
  async checkStorage() {
    try {
      const response = await fetch("/api/health", { credentials: "same-origin", cache: "no-store" });
      const health = await response.json();
      const alarms = new Map();
      (Array.isArray(health.problems) ? health.problems : []).forEach(function (problem) {
        if (problem && problem.code && problem.code !== "database_unavailable") {
          alarms.set(problem.code, problem);
        }
      });
      this.alarms = alarms;
      this.render();
    } catch (error) {
      console.warn("health unavailable", error);
    }
  }

  bind(signal) {
    const self = this;
    const handlers = {
      participant_joined: this.addParticipant,
      participant_left: this.onParticipantLeft,
      mute_changed: this.onMuteChanged,
      quality: this.onQuality,
      hands: this.onHands,
      lobby: this.onLobby,
      presence: this.onPresence,
      agenda: this.onAgenda,
      room_state: this.onRoomState,
      removed: this.onRemoved,
      closing: this.onClosing,
      alarm: this.onAlarm,
      recording: this.onRecording,
      links: this.onLinks,
    };
    bindServerEvents(this, signal, handlers, this.render);
    signal.on("disconnect", function (reason) {
      if (self.signal !== signal || reason === "io client disconnect") {
        return;
      }
      if (reason === "io server disconnect" && !self.serverRestarting) {
        // The server closed this console: the same account joined elsewhere, or it was removed.
        self.stop(_("This console was disconnected by the server: your account may have joined the meeting from another page. Close that page, then connect again."));
        return;
      }
      self.connectionLost("signaling: " + reason);
    });
  }

  connectionLost(reason) {
    if (this.phase !== "live") {
      return;
    }
    console.warn("console connection lost:", reason);
    this.phase = "reconnecting";
    this.showBanner(this.serverRestarting ? _("The server is restarting. Reconnecting…")
      : _("Connection lost. Reconnecting…"), false);
    this.serverRestarting = false;
    this.reconnectLoop(false);
  }

  reconnect() {
    if (this.phase === "stopped") {
      this.phase = "reconnecting";
      this.showBanner(_("Connecting…"), false);
      this.reconnectLoop(false);
    }
  }

  async reconnectLoop(first) {
    this.teardown();
    let attempt = 0;
    this.root.dataset.connection = first ? "connecting" : "reconnecting";
    while (this.phase === "connecting" || this.phase === "reconnecting") {
      if (attempt > 0 || !first) {
        await this.pause(attempt === 0 ? 500 : Math.min(5000, 500 * Math.pow(2, attempt)));
      }
      attempt += 1;
      if (!navigator.onLine) {
        this.showBanner(_("Connection lost. Waiting for the network…"), false);
        continue;
      }
      try {
        await this.connect();
      } catch (error) {
        this.teardown();
        if (error.fatal) {
          this.stop(error.code === "removed" ? _("A moderator has removed you from this meeting.")
            : _("You may not run this meeting now, or your login has ended. Reload the page."));
          return;
        }
        this.showBanner(format(_("The console is not connected (%(reason)s). Trying again…"),
          { reason: error.code || error.message }), false);
        continue;
      }
      if (!first) {
        this.reconnects += 1;
      }
      this.phase = "live";
      this.missed = 0;
      this.root.dataset.connection = "live";
      this.hideBanner();
      this.status(first && this.reconnects === 0 ? _("Connected. The board is live.") : _("Reconnected. The board is live."));
      this.render();
      return;
    }
  }

  pause(ms) {
    return wakeablePause(this, ms);
  }

  teardown() {
    if (this.signal) {
      this.signal.close();
      this.signal = null;
    }
  }

  stop(message) {
    this.phase = "stopped";
    this.teardown();
    this.root.dataset.connection = "stopped";
    this.showBanner(message, true);
    this.render();
  }

  async heartbeat() {
    if (this.phase !== "live" || !this.signal) {
      return;
    }
    const signal = this.signal;
    const reply = await signal.call("ping", {}, 4000);
    if (signal !== this.signal) {
      return;
    }
    this.missed = reply.error && reply.error.code === "timeout" ? this.missed + 1 : 0;
    if (this.missed >= 2) {
      this.connectionLost("no answer to heartbeat");
    }
  }

  // -- server events --------------------------------------------------------------------------
  addParticipant(info) {
    if (!info || !info.participant_id || info.participant_id === this.participantId) {
      return;
    }
    this.participants.forEach(function (p, id) {
      if (p.info.person_id === info.person_id) {
        this.participants.delete(id); // the same person's earlier connection, replaced
      }
    }, this);
    const quality = info.quality && typeof info.quality === "object" && Object.keys(info.quality).length ? info.quality : null;
    this.participants.set(info.participant_id, {
      info: info,
      quality: quality,
      audioMuted: Boolean(info.audio_muted),
      forceMuted: Boolean(info.force_muted),
    });
  }

  onParticipantLeft(data) {
    this.participants.delete(data.participant_id);
  }

  onMuteChanged(data) {
    const p = this.participants.get(data.participant_id);
    if (!p || data.kind !== "audio") {
      return;
    }
    p.audioMuted = Boolean(data.muted);
    if (data.force_muted !== undefined) {
      p.forceMuted = Boolean(data.force_muted);
    }
  }

  onQuality(data) {
    const p = this.participants.get(data.participant_id);
    if (p) {
      p.quality = { rtt_ms: data.rtt_ms, loss_percent: data.loss_percent, bitrate_kbps: data.bitrate_kbps };
    }
  }

  /** Every site's link: what the server sends it and why (weak link, audio only). */
  onLinks(data) {
    this.links = data.sites && typeof data.sites === "object" ? data.sites : {};
  }

  onHands(data) {
    this.hands = Array.isArray(data.queue) ? data.queue : [];
  }

  onLobby(data) {
    this.lobby = Array.isArray(data.waiting) ? data.waiting : [];
  }

  onPresence(data) {
    const presence = new Map();
    (Array.isArray(data.people) ? data.people : []).forEach(function (person) {
      presence.set(person.person_id, person);
    });
    this.presence = presence;
  }

  onAgenda(data) {
    this.agenda = { items: Array.isArray(data.items) ? data.items : [], current_item_id: data.current_item_id || null };
  }

  onRoomState(state) {
    this.roomState = { locked: Boolean(state.locked), lobby_enabled: Boolean(state.lobby_enabled) };
  }

  onRemoved() {
    this.stop(_("A moderator has removed you from this meeting."));
  }

  onAlarm(alarm) {
    // The server cannot save (disk full, read-only or locked database): shown until it says cleared.
    if (alarm.cleared) {
      this.alarms.delete(alarm.code);
    } else if (alarm.code) {
      this.alarms.set(alarm.code, alarm);
    }
  }

  onRecording(data) {
    this.recording.update(data);
  }

  onClosing(notice) {
    // "restarting": a planned restart of the server; reconnect by ourselves as after a lost connection.
    this.serverRestarting = notice.code === "restarting";
  }

  /** The connected participant of a person, if any. */
  participantOf(personId) {
    let found = null;
    this.participants.forEach(function (p, id) {
      if (p.info.person_id === personId) {
        found = Object.assign({ id: id }, p);
      }
    });
    return found;
  }

  // -- actions --------------------------------------------------------------------------------
  /** Send a moderation request; show the server's refusal if there is one. Resolves to the reply. */
  async act(event, payload, done, button) {
    this.clearError();
    if (this.phase !== "live" || !this.signal) {
      this.showError(_("The console is not connected; try again in a moment."));
      return { ok: false };
    }
    if (button) {
      button.disabled = true;
    }
    const reply = await this.signal.call(event, payload);
    if (button) {
      button.disabled = false;
    }
    if (!reply.ok) {
      const error = reply.error || {};
      this.showError(format(_("The server refused: %(message)s"), { message: error.message || error.code || "?" }));
    } else if (done) {
      this.status(done);
    }
    this.render();
    return reply;
  }

  moderate(action, participantId, done, button, extra) {
    const payload = Object.assign({ action: action }, extra || {});
    if (participantId) {
      payload.participant_id = participantId;
    }
    return this.act("moderate", payload, done, button);
  }

  // -- view -----------------------------------------------------------------------------------
  render() {
    this.board.render();
    this.panels.render();
  }

  status(text) {
    byId("console-status").textContent = text;
  }

  showError(text) {
    const node = byId("console-error");
    node.textContent = text;
    node.hidden = false;
  }

  clearError() {
    const node = byId("console-error");
    node.textContent = "";
    node.hidden = true;
  }

  showBanner(text, stopped) {
    byId("banner-text").textContent = text;
    byId("reconnect-button").hidden = !stopped;
    byId("banner").classList.toggle("stopped", Boolean(stopped));
    byId("banner").hidden = false;
  }

  hideBanner() {
    byId("banner").hidden = true;
  }

  /** For tests and technicians: what the console knows. */
  debugState() {
    return {
      phase: this.phase,
      participantId: this.participantId,
      reconnects: this.reconnects,
      participants: Array.from(this.participants.values()).map(function (p) {
        return { id: p.info.participant_id, personId: p.info.person_id, name: p.info.full_name,
          quality: p.quality, link: this.links[p.info.participant_id] || null, audioMuted: p.audioMuted,
          forceMuted: p.forceMuted };
      }, this),
      presence: Array.from(this.presence.values()),
      hands: this.hands,
      lobby: this.lobby,
      roomState: this.roomState,
      agenda: this.agenda,
      alarms: Array.from(this.alarms.values()),
      recording: this.recording.debugState(),
    };
  }
}

const root = byId("console");
if (root) {
  const moderatorConsole = new Console(root);
  window.cabinetConsole = moderatorConsole;
  moderatorConsole.init().catch(function (error) {
    console.error("the console failed to start", error);
  });
}
