// The console's board: one row per expected person, grouped by site (the server renders the rows;
// this keeps them live). Status from `presence` and the roster, quality from `quality`, microphone
// from `mute_changed`; per-row Mute / Allow to speak, Remove (with a confirmation), Let back in and Admit.

import { _, format, language, number } from "./i18n.js";
import { byId, el } from "./dom.js";
import { describeQuality, officeName } from "./room-view.js";
import { linkBadge } from "./room-links.js";

/** Which status a site shows, from those of its people: the most present one wins. */
const SITE_ORDER = ["joined", "lobby", "dropped", "left", "removed", "absent"];

function statusLabel(status) {
  const labels = {
    joined: _("Joined"),
    absent: _("Not yet joined"),
    lobby: _("In the lobby"),
    dropped: _("Dropped"),
    left: _("Left"),
    removed: _("Removed"),
  };
  return labels[status] || status;
}

function clock(seconds) {
  try {
    return new Date(seconds * 1000).toLocaleTimeString(language === "km" ? "km-KH" : "en-GB",
      { hour: "2-digit", minute: "2-digit" });
  } catch (error) {
    return "";
  }
}

export class ConsoleBoard {
  constructor(owner) {
    this.owner = owner;
    this.sites = new Map(); // office id -> {tbody, rows: [row]}
    this.rows = new Map(); // person id -> row
  }

  build() {
    const self = this;
    document.querySelectorAll("#board tbody.site").forEach(function (tbody) {
      const site = { tbody: tbody, rows: [] };
      self.sites.set(tbody.dataset.officeId, site);
      tbody.querySelectorAll("tr.person").forEach(function (tr) {
        self.adoptRow(site, tr);
      });
    });
    byId("board-filter").addEventListener("change", function () { self.render(); });
  }

  adoptRow(site, tr) {
    const personId = parseInt(tr.dataset.personId, 10);
    const name = tr.dataset.name;
    const self = this;
    const row = {
      tr: tr,
      personId: personId,
      name: name,
      self: personId === this.owner.mePersonId,
      status: tr.querySelector(".status"),
      hand: el("span", { className: "pill hand-pill", hidden: true }),
      quality: el("span", { className: "quality", "data-level": "unknown" }),
      link: el("span", { className: "link-cell" }),
      mic: el("span", { className: "mic" }),
      confirming: false,
    };
    tr.querySelector(".status-cell").appendChild(row.hand);
    tr.querySelector(".quality-cell").append(row.quality, row.link);
    tr.querySelector(".mic-cell").appendChild(row.mic);
    row.mute = el("button", { type: "button", className: "small", hidden: true });
    row.remove = el("button", { type: "button", className: "small danger-outline", text: _("Remove"), hidden: true,
      "aria-label": format(_("Remove %(name)s"), { name: name }) });
    row.admit = el("button", { type: "button", className: "small", text: _("Admit"), hidden: true,
      "aria-label": format(_("Admit %(name)s"), { name: name }) });
    row.readmit = el("button", { type: "button", className: "small", text: _("Let back in"), hidden: true,
      "aria-label": format(_("Let back in: %(name)s"), { name: name }) });
    row.confirmYes = el("button", { type: "button", className: "small danger", text: _("Yes, remove") });
    row.confirmNo = el("button", { type: "button", className: "small secondary", text: _("Cancel") });
    row.confirm = el("span", { className: "confirm", role: "group", hidden: true,
      "aria-label": format(_("Confirm the removal of %(name)s"), { name: name }) }, [
      el("span", { text: format(_("Remove %(name)s from the meeting? They cannot join again."), { name: name }) }),
      row.confirmYes, row.confirmNo,
    ]);
    tr.querySelector(".actions-cell").append(row.mute, row.remove, row.admit, row.readmit, row.confirm);
    row.mute.addEventListener("click", function () { self.toggleMute(row); });
    row.remove.addEventListener("click", function () { self.askRemove(row); });
    row.confirmNo.addEventListener("click", function () { self.cancelRemove(row); });
    row.confirmYes.addEventListener("click", function () { self.confirmRemove(row); });
    row.admit.addEventListener("click", function () { self.admit(row); });
    row.readmit.addEventListener("click", function () { self.readmit(row); });
    row.confirm.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        self.cancelRemove(row);
      }
    });
    site.rows.push(row);
    this.rows.set(personId, row);
    return row;
  }

  /** Someone who is not on the server-rendered board (a new account, a late invitation). */
  addRow(personId, info) {
    const officeId = String(info.office_id || "");
    let site = this.sites.get(officeId);
    if (!site) {
      const tbody = el("tbody", { className: "site", "data-office-id": officeId, "data-site-status": "absent" });
      byId("board").appendChild(tbody);
      site = { tbody: tbody, rows: [] };
      this.sites.set(officeId, site);
    }
    const cells = ["person-name", "status-cell", "quality-cell", "mic-cell", "actions-cell"].map(function (name) {
      return el("td", { className: name });
    });
    cells[0].textContent = info.full_name || "";
    cells[1].appendChild(el("span", { className: "status", "data-status": "absent" }));
    const tr = el("tr", { className: "person", "data-person-id": String(personId), "data-name": info.full_name || "" }, cells);
    site.tbody.querySelectorAll("tr.no-account").forEach(function (node) { node.remove(); });
    site.tbody.appendChild(tr);
    let header = site.tbody.querySelector("th.site-name");
    if (!header) {
      header = el("th", { scope: "rowgroup", className: "site-name", text: officeName(info) || _("Other participants") });
      tr.prepend(header);
    }
    header.rowSpan = site.tbody.querySelectorAll("tr").length;
    return this.adoptRow(site, tr);
  }

  /** People the server knows about that the page did not list. */
  addUnknown() {
    const owner = this.owner;
    owner.participants.forEach(function (p) {
      if (!this.rows.has(p.info.person_id)) {
        this.addRow(p.info.person_id, p.info);
      }
    }, this);
    owner.presence.forEach(function (person, personId) {
      if (!this.rows.has(personId)) {
        this.addRow(personId, person);
      }
    }, this);
  }

  statusOf(row) {
    const owner = this.owner;
    const participant = row.self ? null : owner.participantOf(row.personId);
    const presence = owner.presence.get(row.personId);
    let status = presence ? presence.status : "absent";
    if (participant || (row.self && owner.phase === "live")) {
      status = "joined";
    } else if (status === "replaced" || (status === "joined" && owner.phase === "live")) {
      status = "dropped"; // the roster says they are gone; their presence is about to say so too
    }
    return { status: status, since: presence ? presence.since : null, participant: participant };
  }

  render() {
    this.addUnknown();
    const owner = this.owner;
    const live = owner.phase === "live";
    const counts = { joined: 0, absent: 0, dropped: 0, lobby: 0 };
    this.rows.forEach(function (row) {
      this.renderRow(row, live);
    }, this);
    const filter = byId("board-filter").value;
    this.sites.forEach(function (site) {
      let best = "absent";
      site.rows.forEach(function (row) {
        if (SITE_ORDER.indexOf(row.current) < SITE_ORDER.indexOf(best)) {
          best = row.current;
        }
      });
      site.tbody.dataset.siteStatus = best;
      const group = best === "left" || best === "removed" ? "dropped" : best;
      counts[group] += 1;
      site.tbody.hidden = filter !== "all" && filter !== group;
    });
    byId("board-summary").textContent = format(
      _("Sites: %(joined)s joined · %(absent)s not yet joined · %(dropped)s dropped or left · %(lobby)s in the lobby"),
      { joined: number(counts.joined), absent: number(counts.absent), dropped: number(counts.dropped), lobby: number(counts.lobby) });
  }

  renderRow(row, live) {
    const owner = this.owner;
    const found = this.statusOf(row);
    const p = found.participant;
    row.current = found.status;
    row.participantId = p ? p.id : null;
    row.tr.dataset.status = found.status;
    row.tr.dataset.participantId = p ? p.id : "";
    row.status.dataset.status = found.status;
    row.status.textContent = found.since && found.status !== "absent" && found.status !== "joined"
      ? format(_("%(status)s at %(time)s"), { status: statusLabel(found.status), time: clock(found.since) })
      : statusLabel(found.status);
    const position = p ? owner.hands.findIndex(function (h) { return h.participant_id === p.id; }) : -1;
    row.hand.hidden = position < 0;
    row.hand.textContent = position < 0 ? "" : format(_("Hand raised (%(n)s)"), { n: number(position + 1) });
    // Connection quality, as the site itself measures and reports it.
    if (p) {
      const quality = describeQuality(p.quality);
      row.quality.dataset.level = quality.level;
      row.quality.textContent = quality.text;
      row.quality.hidden = false;
    } else {
      row.quality.hidden = true;
      row.quality.textContent = "";
    }
    // The link as the server adapts to it: what the site receives, and why not more.
    const badge = p ? linkBadge(owner.links[p.id]) : null;
    row.link.replaceChildren.apply(row.link, badge ? [badge] : []);
    const observer = p && Array.isArray(p.info.roles) && p.info.roles.length === 1 && p.info.roles[0] === "observer";
    let mic = "";
    row.mic.className = "mic";
    if (row.self) {
      mic = _("This console");
    } else if (p && observer) {
      mic = _("Observer");
    } else if (p && p.forceMuted) {
      mic = _("Muted by a moderator");
      row.mic.className = "mic pill muted-pill";
    } else if (p && p.audioMuted) {
      mic = _("Muted at the site");
      row.mic.className = "mic pill";
    } else if (p) {
      mic = _("On");
    }
    row.mic.textContent = mic;
    // Actions: only on others who are connected (or waiting in the lobby).
    const actionable = live && p && !row.self;
    row.mute.hidden = !actionable || observer || row.confirming;
    if (p) {
      row.mute.textContent = p.forceMuted ? _("Allow to speak") : _("Mute");
      row.mute.setAttribute("aria-label", format(p.forceMuted ? _("Allow %(name)s to speak") : _("Mute %(name)s"), { name: row.name }));
    }
    row.remove.hidden = !actionable || row.confirming;
    if (!actionable && row.confirming) {
      row.confirming = false;
    }
    row.confirm.hidden = !row.confirming;
    const waiting = owner.lobby.find(function (w) { return w.person_id === row.personId; });
    row.waitingId = waiting ? waiting.participant_id : null;
    row.admit.hidden = !live || !waiting;
    // A removal binds the person (restarts included) until a moderator lets them back in.
    row.readmit.hidden = !live || row.self || found.status !== "removed";
  }

  toggleMute(row) {
    const p = row.participantId ? this.owner.participants.get(row.participantId) : null;
    if (!p) {
      return;
    }
    const action = p.forceMuted ? "unmute" : "mute";
    const done = format(action === "mute" ? _("%(name)s is muted by the server.") : _("%(name)s may speak again."), { name: row.name });
    this.owner.moderate(action, row.participantId, done, row.mute);
  }

  askRemove(row) {
    row.confirming = true;
    this.render();
    row.confirmNo.focus();
  }

  cancelRemove(row) {
    row.confirming = false;
    this.render();
    if (!row.remove.hidden) {
      row.remove.focus();
    }
  }

  async confirmRemove(row) {
    const id = row.participantId;
    row.confirming = false;
    this.render();
    if (id) {
      await this.owner.moderate("remove", id, format(_("%(name)s was removed from the meeting."), { name: row.name }));
    }
  }

  readmit(row) {
    this.owner.moderate("readmit", null, format(_("%(name)s may join again."), { name: row.name }), row.readmit,
      { person_id: row.personId });
  }

  admit(row) {
    if (row.waitingId) {
      this.owner.moderate("admit", row.waitingId, format(_("%(name)s was let in."), { name: row.name }), row.admit);
    }
  }
}
