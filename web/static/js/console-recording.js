// The console's recording controls: the "● Recording" / "Recording paused (in camera)" indicator, the
// Pause/Resume button (a pause asks for its reason, which goes into the manifest and the audit trail)
// and the recorder's alarm ("disk full"), shown until it clears. The server sends ``recording``
// {state, recording_id, alarm} to everyone and the same dict in the join reply; this console sends
// ``recording`` {action: "pause" | "resume", reason}.

import { _, format } from "./i18n.js";
import { byId } from "./dom.js";

export class ConsoleRecording {
  constructor(console) {
    this.console = console;
    this.state = "off";
    this.recordingId = null;
    this.alarm = "";
    const self = this;
    const button = byId("recording-toggle");
    if (button) {
      button.addEventListener("click", function () { self.toggle(button); });
    }
  }

  update(data) {
    this.state = data && (data.state === "recording" || data.state === "paused") ? data.state : "off";
    this.recordingId = data ? data.recording_id || null : null;
    this.alarm = data && data.alarm ? String(data.alarm) : "";
    this.render();
  }

  render() {
    const indicator = byId("recording-indicator");
    const button = byId("recording-toggle");
    const alarm = byId("recording-alarm");
    if (indicator) {
      indicator.dataset.state = this.state;
      indicator.hidden = this.state === "off";
      byId("recording-text").textContent = this.state === "paused" ? _("Recording paused (in camera)") : _("Recording");
    }
    if (button) {
      button.hidden = this.state === "off";
      button.dataset.action = this.state === "paused" ? "resume" : "pause";
      button.textContent = this.state === "paused" ? _("Resume the recording") : _("Pause the recording");
    }
    if (alarm) {
      alarm.hidden = !this.alarm;
      alarm.textContent = this.alarm ? format(_("Recording problem: %(alarm)s"), { alarm: this.alarm }) : "";
    }
  }

  async toggle(button) {
    if (this.state === "paused") {
      await this.console.act("recording", { action: "resume" }, _("The recording has resumed."), button);
      return;
    }
    const reason = window.prompt(_("Why is the recording paused? (for example: an in-camera item)"), "");
    if (reason === null) {
      return;
    }
    await this.console.act("recording", { action: "pause", reason: reason.trim() },
      _("The recording is paused."), button);
  }

  debugState() {
    return { state: this.state, recordingId: this.recordingId, alarm: this.alarm };
  }
}
