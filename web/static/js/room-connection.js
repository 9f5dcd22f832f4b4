// Losing the connection and getting it back: peer-connection watchdogs, the reconnection loop, the
// statistics heartbeat and the login keep-alive.
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format, number } from "./i18n.js";
import { openCamera } from "./media.js";
import { wakeablePause } from "./signaling.js";

const STATS_INTERVAL_MS = 5000;
const DISCONNECTED_GRACE_MS = 3000;
const CONNECTING_LIMIT_MS = 20000;
// The login session ends after 30 idle minutes; a person sitting in a meeting is not idle, and needs
// the session to get a new join token if the network drops late in a long session.
const KEEP_ALIVE_MS = 5 * 60 * 1000;

export class RoomConnection {
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

  connectionLost(reason) {
    if (this.phase !== "joined" && this.phase !== "lobby") {
      return;
    }
    console.warn("connection lost:", reason);
    this.phase = "reconnecting";
    this.showBanner(this.serverRestarting ? _("The server is restarting. Reconnecting…")
      : _("Connection lost. Reconnecting…"));
    this.serverRestarting = false;
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
    return wakeablePause(this, ms);
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
    this.clearSlots();
    this.renderSlots();
    this.sampler.reset();
  }

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
}
