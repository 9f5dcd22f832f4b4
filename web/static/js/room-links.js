// Poor links: the site's choice of what it receives (auto / low / audio only), what the page shows
// (set_view: the server never sends a tile nobody sees), and what the server says of the links
// (slot_state for this site's slots, links for every site). See signaling/links.py.
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format, number } from "./i18n.js";
import { byId, el } from "./dom.js";
import { STAGE_VIDEO } from "./room-slots.js";

export const QUALITY_MODES = ["auto", "low", "audio"];
/** The choice is the device's (a provincial office's link does not change with who logs in). */
const QUALITY_KEY = "cabinet.quality";
/** Tiles move and resize in bursts (a switch, a resize): report once they have settled, but no later
 * than VIEW_MAX_WAIT_MS after the first change (a steady stream of small changes must not starve it). */
const VIEW_DEBOUNCE_MS = 300;
const VIEW_MAX_WAIT_MS = 1000;
/** A refused or unanswered report is tried again after this. */
const VIEW_RETRY_MS = 2000;

/** The stored choice, or "auto" (no storage, nothing stored, or something unknown stored). */
export function storedQuality() {
  try {
    const value = window.localStorage.getItem(QUALITY_KEY);
    return QUALITY_MODES.indexOf(value) >= 0 ? value : "auto";
  } catch (error) {
    return "auto"; // storage refused (private mode, policy): the choice lasts for this page only
  }
}

function storeQuality(mode) {
  try {
    window.localStorage.setItem(QUALITY_KEY, mode);
  } catch (error) {
    // as above: not remembered, still applied
  }
}

/** A site's link in words, for the participants panel and the console: {state, label, detail}. */
export function describeLink(link) {
  if (!link || typeof link !== "object") {
    return null;
  }
  const labels = {
    good: _("Link good"),
    reduced: _("Video reduced"),
    weak: _("Video paused: weak link"),
    audio_only: _("Audio only"),
  };
  const state = labels[link.state] ? link.state : "good";
  const parts = [];
  if (typeof link.estimate_kbps === "number") {
    parts.push(format(_("%(value)s kbit/s"), { value: number(link.estimate_kbps) }));
  }
  if (typeof link.loss_percent === "number") {
    parts.push(format(_("loss %(value)s"), { value: number(link.loss_percent, 1) + "%" }));
  }
  return { state: state, label: labels[state], detail: parts.join(" · ") };
}

/** The pill and figures of a site's link (a <span>), or null when the server has said nothing yet. */
export function linkBadge(link) {
  const described = describeLink(link);
  if (!described) {
    return null;
  }
  return el("span", { className: "link-state", "data-link-state": described.state }, [
    el("span", { className: "pill link-pill", text: described.label }),
    described.detail ? el("span", { className: "link-detail", text: described.detail }) : null,
  ]);
}

export class RoomLinks {
  // -- the site's choice ----------------------------------------------------------------------
  bindQualityChoice() {
    const self = this;
    document.querySelectorAll(".quality-choice input[type=radio]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.checked) {
          self.setQuality(input.value);
        }
      });
    });
    this.renderQualityChoice();
  }

  /** Both radio groups (pre-join and session) show the current choice. */
  renderQualityChoice() {
    const mode = this.quality;
    document.querySelectorAll(".quality-choice input[type=radio]").forEach(function (input) {
      input.checked = input.value === mode;
    });
    this.root.dataset.quality = mode;
  }

  async setQuality(mode) {
    if (QUALITY_MODES.indexOf(mode) < 0 || mode === this.quality) {
      return;
    }
    const previous = this.quality;
    this.quality = mode;
    storeQuality(mode);
    this.renderQualityChoice();
    if (this.signal && this.participantId) {
      this.signal.call("set_quality", { mode: mode });
    }
    if (this.phase === "joined" || this.phase === "reconnecting" || this.phase === "lobby") {
      await this.cameraFollowsQuality(previous, mode);
      this.status(mode === "audio" ? _("Audio only: video is paused to save the connection.")
        : (mode === "low" ? _("Low video: less video is received to spare the connection.") : _("Video is back on.")));
      this.renderSlots();
      this.renderRoster();
    }
    this.scheduleViewReport();
  }

  /** Audio only spares the uplink too: the camera goes off, and comes back when video is chosen again. */
  async cameraFollowsQuality(previous, mode) {
    if (!this.canPublish) {
      return;
    }
    if (mode === "audio") {
      this.cameraBeforeAudioOnly = !this.cameraOff;
      if (!this.cameraOff) {
        await this.turnCameraOff(Boolean(this.signal));
      }
    } else if (previous === "audio" && this.cameraBeforeAudioOnly) {
      this.cameraBeforeAudioOnly = false;
      await this.turnCameraOn();
    }
  }

  // -- what the page shows (set_view) ---------------------------------------------------------
  startViewWatch() {
    const self = this;
    // The observers only say when to look again: their entries arrive a frame late, and a tile judged
    // from a stale entry (the stage while the session view was still hidden) would be paused for
    // nothing. What is seen is measured when the report is made (slotView).
    this.viewObserver = new IntersectionObserver(function () { self.scheduleViewReport(); }, { threshold: [0, 0.01] });
    this.sizeObserver = new ResizeObserver(function () { self.scheduleViewReport(); });
    document.addEventListener("visibilitychange", function () { self.scheduleViewReport(); });
    this.watchTile(byId("stage"));
  }

  /** Tiles that can show a slot's video: watched for being on screen and for their size. */
  watchTile(node) {
    if (node && this.viewObserver) {
      this.viewObserver.observe(node);
      this.sizeObserver.observe(node);
    }
  }

  unwatchTile(node) {
    if (node && this.viewObserver) {
      this.viewObserver.unobserve(node);
      this.sizeObserver.unobserve(node);
    }
  }

  /** A new receiving connection: the server knows nothing of this page's view yet. */
  resetView() {
    this.viewSent = null;
    this.slotStates = {};
    this.scheduleViewReport();
  }

  scheduleViewReport(delay) {
    const now = performance.now();
    if (this.viewTimer) {
      clearTimeout(this.viewTimer);
    } else {
      this.viewFirstChange = now;
    }
    const wait = Math.min(delay === undefined ? VIEW_DEBOUNCE_MS : delay,
      Math.max(0, this.viewFirstChange + VIEW_MAX_WAIT_MS - now));
    const self = this;
    this.viewTimer = setTimeout(function () {
      self.viewTimer = null;
      self.reportView();
    }, delay === undefined ? wait : delay);
  }

  /** Where a video slot is shown: the stage, the tile it sits in, or nowhere decided (null). */
  slotContainer(slot) {
    if (slot.id === STAGE_VIDEO) {
      return byId("stage");
    }
    const tile = slot.element ? slot.element.closest("li.tile") : null;
    return tile;
  }

  /** One slot as the page shows it: {visible, width, height} in CSS pixels. */
  slotView(slot) {
    const container = this.slotContainer(slot);
    // A slot waiting for its new source's first frame, or not placed in a tile yet, must not be
    // starved: the page cannot know whether it will be seen, so it asks for it.
    if (!container || slot.pending) {
      return { visible: true };
    }
    const box = container.getBoundingClientRect();
    const width = Math.round(box.width);
    const height = Math.round(box.height);
    // Hidden (display:none, a collapsed strip) has no size; off-screen is outside the viewport.
    const onScreen = box.bottom > 0 && box.right > 0 && box.top < window.innerHeight && box.left < window.innerWidth;
    const visible = !document.hidden && width > 0 && height > 0 && onScreen;
    return { visible: visible, width: Math.min(width, 10000), height: Math.min(height, 10000) };
  }

  /** Tell the server which video slots are seen and how big, when that changed. */
  reportView() {
    if (!this.signal || !this.recvPc || this.phase !== "joined") {
      return;
    }
    const slots = {};
    this.slots.forEach(function (slot) {
      if (slot.kind === "video") {
        slots[slot.id] = this.slotView(slot);
      }
    }, this);
    const text = JSON.stringify(slots);
    if (!Object.keys(slots).length || text === this.viewSent) {
      return;
    }
    this.viewSent = text;
    const self = this;
    const signal = this.signal;
    signal.call("set_view", { slots: slots }).then(function (reply) {
      self.viewError = reply.ok ? null : reply.error;
      // A server without budgets (media.budget_enabled false) says wrong_state: it sends everything
      // anyway, so this view is not sent again. Unanswered or refused otherwise: tell it again.
      const settled = reply.ok || (reply.error && reply.error.code === "wrong_state");
      if (!settled && signal === self.signal && self.viewSent === text) {
        self.viewSent = null;
        self.scheduleViewReport(VIEW_RETRY_MS);
      }
    });
  }

  // -- what the server says -------------------------------------------------------------------
  /** Nobody takes this camera (no slot wants it): stop sending it, which spares a poor uplink;
   *  or someone does again. The track stays on: only the encoding is switched. */
  onVideoWanted(data) {
    const sender = this.senders && this.senders.video;
    if (!sender || typeof sender.getParameters !== "function") {
      return;
    }
    this.videoWanted = Boolean(data.wanted);
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) {
      return;
    }
    params.encodings.forEach(function (encoding) { encoding.active = Boolean(data.wanted); });
    sender.setParameters(params).catch(function () { /* a connection being rebuilt: the next publish sends */ });
  }

  /** This site's budget: the estimate and every slot's state (active, paused for bandwidth...). */
  onSlotState(data) {
    this.ownLink = {
      estimate_kbps: data.estimate_kbps,
      loss_percent: data.loss_percent,
      mode: data.mode,
      probing: Boolean(data.probing),
    };
    const states = {};
    const slots = data.slots && typeof data.slots === "object" ? data.slots : {};
    Object.keys(slots).forEach(function (slotId) {
      const entry = slots[slotId] || {};
      states[slotId] = { state: String(entry.state || "active"), layer: typeof entry.layer === "number" ? entry.layer : -1 };
    });
    const changed = JSON.stringify(states) !== JSON.stringify(this.slotStates);
    this.slotStates = states;
    this.holdForRetransmissions(typeof data.rtt_ms === "number" ? data.rtt_ms : null);
    this.renderOwnLink();
    if (changed) {
      this.renderSlots();
    }
  }

  /** On a long round trip a lost video packet comes back one round trip later, after the decoder
   *  would have frozen: ask the video receivers to hold frames that long (jitterBufferTarget; the
   *  audio follows through lip sync). A short round trip leaves the browser's own choice. The
   *  round trip is the server's (slot_state rtt_ms: its receiver reports of this site). */
  holdForRetransmissions(rttMs) {
    // three reports in a row must say so: a late answer or two on a loaded server is not a long round trip
    const recent = (this.recentRttMs || []).concat([rttMs]).slice(-3);
    this.recentRttMs = recent;
    const rtt = recent.length < 3 || recent.indexOf(null) >= 0 ? null : Math.min.apply(null, recent);
    const target = rtt !== null && rtt >= 150 ? Math.min(1500, Math.round(rtt * 1.5 + 50)) : null;
    if (!this.recvPc || (target === this.jitterTarget)) {
      return;
    }
    if (target !== null && this.jitterTarget !== null && this.jitterTarget !== undefined
        && Math.abs(target - this.jitterTarget) < 50) {
      return;  // not worth moving the playout for
    }
    this.jitterTarget = target;
    this.recvPc.getReceivers().forEach(function (receiver) {
      if (receiver.track && receiver.track.kind === "video" && "jitterBufferTarget" in receiver) {
        receiver.jitterBufferTarget = target;
      }
    });
  }

  /** Every site's link (the `links` event, and `links` in the join reply). */
  onLinks(data) {
    const sites = data && data.sites && typeof data.sites === "object" ? data.sites : {};
    this.links = sites;
    this.participants.forEach(function (p) {
      p.link = sites[p.id] || null;
    });
    this.renderRoster();
  }

  /** A video slot's state as the server last reported it ("active" until it says otherwise). */
  slotStateOf(slot) {
    const entry = slot && this.slotStates ? this.slotStates[slot.id] : null;
    return entry ? entry.state : "active";
  }

  /** "Your link: 1,200 kbit/s · loss 0.5%" next to the participants' connection quality. */
  renderOwnLink() {
    const node = byId("own-link");
    if (!node) {
      return;
    }
    const link = this.ownLink;
    node.hidden = !link;
    if (!link) {
      return;
    }
    const weak = Object.keys(this.slotStates || {}).some(function (id) {
      return this.slotStates[id].state === "paused_bandwidth";
    }, this);
    node.dataset.level = weak ? "poor" : (link.loss_percent > 2 ? "fair" : "good");
    node.textContent = format(_("Your link: %(kbps)s kbit/s · loss %(loss)s"),
      { kbps: number(link.estimate_kbps || 0), loss: number(link.loss_percent || 0, 1) + "%" });
  }

  /** The notice over a tile (or the stage) whose video the server paused for want of bandwidth. */
  renderPausedNotice(node, state) {
    if (!node) {
      return;
    }
    const weak = state === "paused_bandwidth" && this.quality !== "audio";
    node.hidden = !weak;
    const text = weak ? _("Video paused: weak link") : "";
    if (node.textContent !== text) {
      node.textContent = text; // only on a change: the stage's notice is a live region
    }
  }
}
