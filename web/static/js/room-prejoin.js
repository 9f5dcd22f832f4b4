// The pre-join check: camera and microphone preview, device choice, and the connection test (the
// tested connection is kept for joining).
// Its methods are mixed into the Room class (room.js): `this` is the Room, whose state the constructor
// there sets up.

import { _, format, number } from "./i18n.js";
import { listDevices, openCamera, openMedia } from "./media.js";
import { Signaling, fetchJoinToken, measureRoundTrip } from "./signaling.js";
import { byId, el } from "./dom.js";

export class RoomPrejoin {
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

  /**
   * Get a join token, connect, and time a few acknowledged messages; keep the connection for joining.
   * A failure that may be passing (the network changed under the request, no answer yet) is retried
   * twice, a second apart, before it is shown: the person would otherwise have to press "Test again".
   */
  async testConnection(retries) {
    if (this.phase !== "prejoin") {
      return;
    }
    const left = retries === undefined ? 2 : retries;
    const self = this;
    const retryLater = function () {
      if (left <= 0) {
        return false;
      }
      setTimeout(function () { self.testConnection(left - 1); }, 1000);
      return true;
    };
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
        if (!retryLater()) {
          this.setConnectionResult("bad", _("The server does not answer."));
        }
        return;
      }
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
      } else if (!retryLater()) {
        this.setConnectionResult("bad", format(_("Cannot reach the server (%(reason)s)."), { reason: error.code || error.message }));
      }
    } finally {
      button.disabled = false;
    }
  }
}
