// The controls: microphone, camera, hand, thumbnails, sound, pin and spotlight, and the page-level listeners
// (the site's choice of video, auto / low / audio only, is room-links.js).
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format } from "./i18n.js";
import { openCamera } from "./media.js";
import { byId, setPressed } from "./dom.js";

export class RoomControls {
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
    on("thumbs-button", this.toggleThumbs);
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

  /** Hide the thumbnails (a small screen, a weak link): their videos are then not sent at all. */
  toggleThumbs() {
    this.thumbsHidden = !this.thumbsHidden;
    this.root.dataset.thumbs = this.thumbsHidden ? "hidden" : "shown";
    this.renderControls();
    this.status(this.thumbsHidden ? _("The thumbnails are hidden: their video is not sent to you.")
      : _("The thumbnails are shown."));
    this.scheduleViewReport();
  }

  enableSound() {
    this.slots.forEach(function (slot) {
      if (slot.element) {
        slot.element.play().catch(function () {});
      }
    });
    byId("sound-button").hidden = true;
  }

  /** Put a participant on my own stage, or take them off (the server then follows the session again). */
  async togglePin(participantId) {
    if (!this.signal) {
      return;
    }
    const target = this.ownPin === participantId ? null : participantId;
    const reply = await this.signal.call("pin", { participant_id: target });
    if (reply.ok) {
      this.ownPin = target;
      const p = target ? this.participants.get(target) : null;
      this.status(p ? format(_("%(name)s is pinned to your stage."), { name: p.info.full_name })
        : _("Your stage follows the meeting again."));
      this.renderSlots();
    } else if (reply.error && reply.error.code === "not_found") {
      this.status(_("This participant has left the meeting."));
    } else {
      this.status(_("The request did not reach the server. Try again."));
    }
  }

  /** Moderators: put a participant on everyone's stage, or end the spotlight. */
  async toggleSpotlight(participantId) {
    if (!this.signal) {
      return;
    }
    const ending = this.spotlight === participantId;
    const reply = await this.signal.call("moderate", ending ? { action: "spotlight_off" }
      : { action: "spotlight", participant_id: participantId });
    if (reply.ok) {
      return; // the server's `spotlight` event updates every page, this one included
    }
    if (reply.error && reply.error.code === "not_found") {
      this.status(_("This participant has left the meeting."));
    } else if (reply.error && reply.error.code === "forbidden") {
      this.status(_("Only the meeting's moderators can use the spotlight."));
    } else {
      this.status(_("The request did not reach the server. Try again."));
    }
  }
}
