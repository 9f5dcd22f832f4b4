// The archive's playback page: seek from chapters, speakers and decisions, ?t= on load, playback
// speed, "link to this moment", per-participant tracks loaded on demand, and the MP4 export's progress.
// The page's data come from the JSON block #archive-data (no inline script: see web/security.py).

import { _, format, loadCatalog } from "./i18n.js";

const data = JSON.parse(document.getElementById("archive-data").textContent || "{}");
const player = document.getElementById("player");
const state = { seekedToStart: false, track: null, exportTimer: null };

function seek(seconds) {
  if (!player) {
    return;
  }
  const target = Math.max(0, Number(seconds) || 0);
  if (state.track) {
    backToProceedings(target);
    return;
  }
  if (player.readyState >= 1) {
    player.currentTime = target;
  } else {
    player.addEventListener("loadedmetadata", function once() {
      player.removeEventListener("loadedmetadata", once);
      player.currentTime = target;
    });
  }
  const started = player.play();
  if (started && started.catch) {
    started.catch(function () { /* autoplay refused: the position is set, the user presses play */ });
  }
}

function backToProceedings(at) {
  state.track = null;
  player.src = data.proceedings;
  document.getElementById("now-playing").textContent = _("The proceedings");
  document.getElementById("back-to-proceedings").hidden = true;
  player.addEventListener("loadedmetadata", function once() {
    player.removeEventListener("loadedmetadata", once);
    player.currentTime = at || 0;
  });
  player.load();
}

function playTrack(button) {
  // A participant's own file, loaded only now (nothing is preloaded): it replaces the proceedings in
  // the player until "Back to the proceedings".
  state.track = button.dataset.src;
  player.src = button.dataset.src;
  document.getElementById("now-playing").textContent = format(_("Now playing: %(name)s"), { name: button.dataset.label });
  document.getElementById("back-to-proceedings").hidden = false;
  player.load();
  const started = player.play();
  if (started && started.catch) {
    started.catch(function () {});
  }
}

function momentLink() {
  const seconds = Math.floor(player ? player.currentTime : 0);
  const url = location.origin + data.base + "?t=" + seconds;
  const output = document.getElementById("moment-output");
  output.textContent = url;
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(url).then(function () {
      output.textContent = format(_("Copied: %(url)s"), { url: url });
    }, function () { /* not allowed: the address is shown to copy by hand */ });
  }
}

function layoutTimeline() {
  const duration = Number(data.duration_ms) || 0;
  if (!duration) {
    return;
  }
  document.querySelectorAll("#timeline [data-start]").forEach(function (node) {
    const start = Number(node.dataset.start) || 0;
    const end = Math.max(start, Number(node.dataset.end) || start);
    node.style.left = (100 * start / duration) + "%";
    node.style.width = Math.max(0.5, 100 * (end - start) / duration) + "%";
  });
}

function highlightChapter() {
  if (!player || state.track) {
    return;
  }
  const ms = player.currentTime * 1000;
  const chapters = data.chapters || [];
  const buttons = document.querySelectorAll("#chapters button.seek");
  chapters.forEach(function (chapter, i) {
    const end = chapter.end_ms === null || chapter.end_ms === undefined ? Infinity : chapter.end_ms;
    const current = ms >= chapter.start_ms && ms < end;
    if (buttons[i]) {
      buttons[i].closest("li").classList.toggle("current", current);
    }
  });
}

function showExport(status) {
  const section = document.getElementById("export");
  if (!section) {
    return;
  }
  section.dataset.state = status.state;
  const bar = document.getElementById("export-progress");
  bar.hidden = status.state !== "running";
  bar.value = Number(status.progress) || 0;
  const error = document.getElementById("export-error");
  error.hidden = status.state !== "failed";
  error.textContent = status.error || "";
  document.getElementById("export-done").hidden = status.state !== "done";
  document.getElementById("export-button").disabled = status.state === "running";
}

async function pollExport() {
  try {
    const response = await fetch(data.export_api, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) {
      const status = await response.json();
      showExport(status);
      if (status.state === "running") {
        state.exportTimer = setTimeout(pollExport, 1000);
        return;
      }
    }
  } catch (error) {
    state.exportTimer = setTimeout(pollExport, 3000);
    return;
  }
  state.exportTimer = null;
}

async function startExport(event) {
  event.preventDefault();
  const form = event.target;
  const token = form.querySelector("input[name=csrf_token]").value;
  const response = await fetch(form.action, {
    method: "POST", credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRF-Token": token },
  });
  if (response.ok) {
    showExport(await response.json());
  }
  if (!state.exportTimer) {
    pollExport();
  }
}

function init() {
  document.querySelectorAll("[data-seek]").forEach(function (button) {
    button.addEventListener("click", function () { seek(button.dataset.seek); });
  });
  document.querySelectorAll("button.play-track").forEach(function (button) {
    button.addEventListener("click", function () { playTrack(button); });
  });
  const back = document.getElementById("back-to-proceedings");
  if (back) {
    back.addEventListener("click", function () { backToProceedings(0); });
  }
  const speed = document.getElementById("speed");
  if (speed && player) {
    speed.addEventListener("change", function () { player.playbackRate = Number(speed.value) || 1; });
    player.addEventListener("loadedmetadata", function () { player.playbackRate = Number(speed.value) || 1; });
  }
  const moment = document.getElementById("moment-link");
  if (moment) {
    moment.addEventListener("click", momentLink);
  }
  if (player) {
    player.addEventListener("timeupdate", highlightChapter);
    const start = Number(data.start) || 0;
    if (start > 0) {
      // ?t= is honoured once, as soon as the player knows the file's length.
      const apply = function () {
        if (!state.seekedToStart) {
          state.seekedToStart = true;
          player.currentTime = start;
        }
      };
      if (player.readyState >= 1) {
        apply();
      } else {
        player.addEventListener("loadedmetadata", apply, { once: true });
      }
    }
  }
  layoutTimeline();
  const form = document.getElementById("export-form");
  if (form) {
    form.addEventListener("submit", startExport);
    if (document.getElementById("export").dataset.state === "running") {
      pollExport();
    }
  }
  window.cabinetArchive = { seek: seek, data: data, state: state };
}

loadCatalog().then(init, init);
