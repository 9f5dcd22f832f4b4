// Server events: the signaling messages the room listens to, and the participant list they keep.
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format, language, number } from "./i18n.js";
import { byId, el, setPressed } from "./dom.js";
import { bindServerEvents } from "./signaling.js";

export class RoomEvents {
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

  onClosing(notice) {
    // The server says why it is about to close this connection; "restarting": a planned restart, after
    // which this page reconnects by itself like after any lost connection.
    this.serverRestarting = notice.code === "restarting";
  }

  onRoomState(state) {
    byId("room-locked").hidden = !state.locked;
  }

  /** Whether the session is being recorded: the ``recording`` event, and the same dict in the join reply. */
  onRecording(data) {
    const state = data && (data.state === "recording" || data.state === "paused") ? data.state : "off";
    this.recording = { state: state, recordingId: data ? data.recording_id || null : null, alarm: data && data.alarm ? String(data.alarm) : "" };
    this.renderRecording();
  }

  bindSignal(signal) {
    const self = this;
    const handlers = {
      participant_joined: this.onParticipantJoined,
      participant_left: this.onParticipantLeft,
      slot: this.onSlot,
      spotlight: this.onSpotlight,
      dominant_speaker: this.onDominantSpeaker,
      mute_changed: this.onMuteChanged,
      transport_state: this.onTransportState,
      hands: this.onHands,
      agenda: this.onAgenda,
      quality: this.onQuality,
      admitted: this.onAdmitted,
      removed: this.onRemoved,
      room_state: this.onRoomState,
      closing: this.onClosing,
      recording: this.onRecording,
      slot_state: this.onSlotState,
      video_wanted: this.onVideoWanted,
      links: this.onLinks,
    };
    bindServerEvents(this, signal, handlers);
    signal.on("disconnect", function (reason) {
      if (self.signal === signal && reason !== "io client disconnect") {
        self.connectionLost("signaling: " + reason);
      }
    });
  }

  addParticipant(info) {
    if (!info || !info.participant_id || info.participant_id === this.participantId) {
      return;
    }
    if (info.client === "console") {
      return; // the secretariat's console is not a site in the meeting
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
      link: this.links[info.participant_id] || null,
      tile: null,
    });
  }

  removeParticipant(id) {
    const p = this.participants.get(id);
    if (!p) {
      return;
    }
    this.participants.delete(id);
    this.placeSlotVideos(); // a slot's <video> in the tile goes back to the park, still playing
    if (p.tile) {
      this.unwatchTile(p.tile.root);
      p.tile.root.remove();
    }
    if (this.stageId === id) {
      this.stageId = null;
    }
    if (this.ownPin === id) {
      this.ownPin = null;
      if (this.signal) {
        this.signal.call("pin", { participant_id: null });
      }
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

  onDominantSpeaker(data) {
    this.dominant = data.participant_id || null;
    this.participants.forEach(this.renderTile, this);
    this.renderStage();
  }

  onSpotlight(data) {
    this.spotlight = data.participant_id || null;
    const p = this.spotlight ? this.participants.get(this.spotlight) : null;
    if (this.spotlight === this.participantId) {
      this.status(_("A moderator has put you in the spotlight: everyone sees you on their stage."));
    } else if (p) {
      this.status(format(_("%(name)s is in the spotlight for everyone."), { name: p.info.full_name }));
    } else if (!this.spotlight) {
      this.status(_("The spotlight has ended."));
    }
    this.renderSlots();
    this.renderSelf();
    this.renderRoster();
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
}
