// The view: which part of the page shows, the stage, the thumbnails, the roster and hands panels,
// the controls' state, the banner and the status line.
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format, language, number } from "./i18n.js";
import { qualityLevel } from "./stats.js";
import { byId, el, initials, setPressed } from "./dom.js";
import { linkBadge } from "./room-links.js";
import { STAGE_VIDEO } from "./room-slots.js";

/** "Good · 120 ms · loss 1% · 800 kbit/s" and its level (good / fair / poor / unknown), for display. */
export function describeQuality(summary) {
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

/** A participant's office in the page's language. */
export function officeName(info) {
  return (language === "km" && info.office_name_km) ? info.office_name_km : (info.office_name || "");
}

const PIN_ICON = "M14 3l7 7-2 1-3-1-3.5 3.5.5 4.5-1.5 1.5-3.5-3.5L4 20l-1-1 4-4.5L3.5 11 5 9.5l4.5.5L13 6.5 12 3.5z";
const SPOTLIGHT_ICON = "M12 2a1 1 0 0 1 1 1v2a1 1 0 0 1-2 0V3a1 1 0 0 1 1-1zm7.1 2.9a1 1 0 0 1 0 1.4l-1.4 1.4a1 1 0 1 1-1.4-1.4l1.4-1.4a1 1 0 0 1 1.4 0zM4.9 4.9a1 1 0 0 1 1.4 0l1.4 1.4a1 1 0 0 1-1.4 1.4L4.9 6.3a1 1 0 0 1 0-1.4zM12 8a5 5 0 0 1 3 9v2a2 2 0 0 1-2 2h-2a2 2 0 0 1-2-2v-2a5 5 0 0 1 3-9z";

/** A small button with an icon; its name (aria-label, tooltip) says what pressing it does. */
function iconButton(className, path, onClick) {
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const shape = document.createElementNS(svgNs, "path");
  shape.setAttribute("d", path);
  svg.appendChild(shape);
  const button = el("button", { type: "button", className: "tile-action " + className }, [svg]);
  button.addEventListener("click", onClick);
  return button;
}

function setAction(button, on, label, short) {
  button.dataset.on = on ? "true" : "false";
  button.setAttribute("aria-label", label);
  button.title = short;
}

export class RoomView {
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

  showBanner(text) {
    byId("banner-text").textContent = text;
    byId("banner").hidden = false;
  }

  hideBanner() {
    byId("banner").hidden = true;
  }

  /** "● Recording" / "Recording paused (in camera)" in the room's header, for everyone in the session. */
  renderRecording() {
    const node = byId("recording-indicator");
    if (!node) {
      return;
    }
    const state = this.recording ? this.recording.state : "off";
    node.dataset.state = state;
    node.hidden = state === "off";
    byId("recording-text").textContent = state === "paused" ? _("Recording paused (in camera)") : _("Recording");
    node.title = state === "paused" ? _("Nothing is recorded until the moderators resume the recording.")
      : _("This session is recorded for the archive.");
  }

  status(text) {
    byId("room-status").textContent = text;
  }

  qualityText(summary) {
    return describeQuality(summary);
  }

  renderAll() {
    this.renderControls();
    this.renderSelf();
    this.participants.forEach(this.renderTile, this);
    this.renderRoster();
    this.renderHands();
    this.renderStage();
    this.renderOwnLink();
    this.scheduleViewReport();
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
    setPressed(byId("thumbs-button"), this.thumbsHidden); // pressed: hidden (the label stays, as for Mute)
    this.renderQualityChoice();
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
    tile.spotlight.hidden = !this.spotlight || this.spotlight !== this.participantId;
    tile.placeholder.textContent = initials(this.me ? this.me.full_name : "");
    tile.office.textContent = this.me ? this.officeName(this.me) : "";
  }

  officeName(info) {
    return officeName(info);
  }

  makeTile(name, office) {
    const video = el("video", { autoplay: true, muted: true, playsInline: true });
    const placeholder = el("span", { className: "tile-placeholder", "aria-hidden": "true" });
    const muted = el("span", { className: "tile-muted", text: _("Muted"), hidden: true });
    const hand = el("span", { className: "tile-hand", text: _("Hand raised"), hidden: true });
    const spotlight = el("span", { className: "tile-spotlight", text: _("Spotlight"), hidden: true });
    const paused = el("span", { className: "tile-paused", hidden: true });
    const nameNode = el("span", { className: "tile-name", text: name });
    const officeNode = el("span", { className: "tile-office", text: office });
    const root = el("li", { className: "tile" }, [
      video, placeholder,
      el("span", { className: "tile-badges" }, [muted, hand, spotlight]),
      el("span", { className: "tile-label" }, [nameNode, officeNode]),
      paused,
    ]);
    return { root: root, video: video, placeholder: placeholder, muted: muted, hand: hand, spotlight: spotlight,
      paused: paused, name: nameNode, office: officeNode, track: null, pin: null, spot: null };
  }

  /** A participant's tile: "Pin to my stage" for everyone, "Spotlight for everyone" for moderators. */
  makeParticipantTile(p) {
    const tile = this.makeTile(p.info.full_name, this.officeName(p.info));
    tile.root.dataset.participantId = p.id;
    // The tile's own <video> is not used: a thumbnail slot's <video> moves into the tile it shows.
    tile.video.remove();
    tile.video = null;
    const self = this;
    tile.pin = iconButton("tile-pin", PIN_ICON, function () { self.togglePin(p.id); });
    tile.spot = iconButton("tile-spot", SPOTLIGHT_ICON, function () { self.toggleSpotlight(p.id); });
    tile.root.appendChild(el("span", { className: "tile-actions" }, [tile.pin, tile.spot]));
    this.watchTile(tile.root); // whether it is seen, and how big, decides what the server sends for it
    return tile;
  }

  renderTile(p) {
    if (!p.tile) {
      p.tile = this.makeParticipantTile(p);
      byId("thumbs").appendChild(p.tile.root);
    }
    const tile = p.tile;
    const slot = this.placeSlotVideos().get(p.id) || null;
    // A paused slot keeps its last frame: the name card shows instead (names stay in audio only).
    const state = slot ? this.slotStateOf(slot) : "empty";
    tile.root.dataset.video = slot && state === "active" && this.quality !== "audio" ? "on" : "off";
    tile.root.dataset.slotId = slot ? slot.id : "";
    tile.root.dataset.slotState = slot ? state : "";
    this.renderPausedNotice(tile.paused, state);
    tile.root.classList.toggle("speaking", this.dominant === p.id);
    tile.root.classList.toggle("on-stage", this.stageId === p.id);
    tile.root.classList.toggle("pinned", this.ownPin === p.id);
    tile.root.classList.toggle("spotlighted", this.spotlight === p.id);
    tile.placeholder.textContent = initials(p.info.full_name);
    tile.muted.hidden = !p.audioMuted;
    tile.hand.hidden = !this.hands.some(function (h) { return h.participant_id === p.id; });
    tile.spotlight.hidden = this.spotlight !== p.id;
    const pinned = this.ownPin === p.id;
    setAction(tile.pin, pinned, pinned ? format(_("Unpin %(name)s"), { name: p.info.full_name })
      : format(_("Pin %(name)s to my stage"), { name: p.info.full_name }), pinned ? _("Unpin") : _("Pin to my stage"));
    tile.spot.hidden = !this.mayModerate;
    const lit = this.spotlight === p.id;
    setAction(tile.spot, lit, lit ? format(_("End the spotlight on %(name)s"), { name: p.info.full_name })
      : format(_("Spotlight %(name)s for everyone"), { name: p.info.full_name }),
      lit ? _("End the spotlight") : _("Spotlight for everyone"));
  }

  /** The stage: whoever the stage slots carry, named from the first frame of their video on. */
  renderStage() {
    const stage = byId("stage");
    const name = byId("stage-name");
    const placeholder = byId("stage-placeholder");
    const shown = this.stageShown();
    const previous = this.stageId;
    this.stageId = shown.participantId;
    const p = this.stageId ? this.participants.get(this.stageId) : null;
    const state = this.slotStateOf(this.slots.get(STAGE_VIDEO));
    stage.dataset.empty = shown.video && state === "active" && this.quality !== "audio" ? "false" : "true";
    stage.dataset.slotState = state;
    this.renderPausedNotice(byId("stage-paused"), shown.video ? state : "active");
    stage.dataset.participantId = p ? p.id : "";
    stage.dataset.switching = shown.pending ? "true" : "false";
    if (previous !== this.stageId) {
      [previous, this.stageId].forEach(function (id) {
        const q = id ? this.participants.get(id) : null;
        if (q && q.tile) {
          q.tile.root.classList.toggle("on-stage", id === this.stageId);
        }
      }, this);
    }
    if (!p) {
      placeholder.textContent = shown.pending ? "" : _("Waiting for other participants…");
      name.textContent = "";
      return;
    }
    name.replaceChildren(el("strong", { text: p.info.full_name }), el("span", { text: this.officeName(p.info) }));
    if (p.audioMuted) {
      name.appendChild(el("span", { className: "tile-muted", text: _("Muted") }));
    }
    if (this.spotlight === p.id) {
      name.appendChild(el("span", { className: "pill spotlight-pill", text: _("Spotlight") }));
    } else if (this.ownPin === p.id) {
      name.appendChild(el("span", { className: "pill", text: _("Pinned to your stage") }));
    }
    if (this.quality === "audio") {
      name.appendChild(el("span", { className: "pill", text: _("Audio only") }));
    }
    placeholder.textContent = stage.dataset.empty === "false" ? "" : initials(p.info.full_name);
  }

  renderRoster() {
    const list = byId("roster");
    if (!list) {
      return;
    }
    list.replaceChildren();
    const entries = [];
    if (this.me && this.participantId) {
      entries.push({ info: this.me, self: true, audioMuted: this.micMuted, quality: this.ownQuality, id: this.participantId,
        link: this.links[this.participantId] || null });
    }
    this.participants.forEach(function (p) {
      entries.push({ info: p.info, self: false, audioMuted: p.audioMuted, quality: p.quality, id: p.id, link: p.link || null });
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
          entry.id === this.spotlight ? el("span", { className: "pill spotlight-pill", text: _("Spotlight") }) : null,
          el("span", { className: "quality", "data-level": quality.level, text: quality.text }),
          linkBadge(entry.link),
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
}
