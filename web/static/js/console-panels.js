// The console's side panels: lock and lobby toggles, raised hands in order, the lobby, the agenda.

import { _, format, language, number } from "./i18n.js";
import { byId, el, setPressed } from "./dom.js";
import { officeName } from "./room-view.js";

/** Replace a list's items, keeping keyboard focus on the button with the same key if it survives. */
function replaceKeepingFocus(list, items) {
  const active = document.activeElement;
  const key = active && list.contains(active) ? active.dataset.key : null;
  list.replaceChildren.apply(list, items);
  if (key) {
    const again = list.querySelector('[data-key="' + key + '"]');
    if (again) {
      again.focus();
    }
  }
}

/** What the secretariat should know and do, per storage alarm code (signaling/alarms.py). */
function alarmText(alarm) {
  switch (alarm.code) {
    case "disk_full":
      return _("The server's disk is full: attendance, votes and the current item cannot be saved. The session goes on. Free space on the server now.");
    case "read_only":
      return _("The database is read-only: nothing new can be saved. The session goes on. Tell the administrator now.");
    case "busy":
      return _("The database is locked by another program: records are saved late or not at all. Tell the administrator.");
    default:
      return format(_("The server cannot save: %(message)s"), { message: alarm.message || alarm.code });
  }
}

export class ConsolePanels {
  constructor(owner) {
    this.owner = owner;
  }

  bind() {
    const owner = this.owner;
    byId("lock-button").addEventListener("click", function (event) {
      const lock = !owner.roomState.locked;
      owner.moderate(lock ? "lock" : "unlock", null,
        lock ? _("The meeting is locked: no one else can join.") : _("The meeting is unlocked."), event.currentTarget);
    });
    byId("lobby-button").addEventListener("click", function (event) {
      const on = !owner.roomState.lobby_enabled;
      owner.moderate(on ? "lobby_on" : "lobby_off", null,
        on ? _("The lobby is on: new arrivals wait to be admitted.") : _("The lobby is off: people join directly."),
        event.currentTarget);
    });
    byId("agenda-clear").addEventListener("click", function (event) {
      owner.act("set_agenda_item", { item_id: null }, _("No agenda item is current."), event.currentTarget);
    });
  }

  /** The storage alarm, above everything, until the server says it cleared. */
  renderAlarms() {
    let box = byId("storage-alarm");
    if (!box) {
      box = el("div", { id: "storage-alarm", className: "storage-alarm", role: "alert" });
      const banner = byId("banner");
      banner.parentNode.insertBefore(box, banner);
    }
    const alarms = Array.from(this.owner.alarms.values());
    box.hidden = alarms.length === 0;
    box.replaceChildren.apply(box, alarms.map(function (alarm) {
      return el("p", { "data-code": alarm.code }, [el("strong", { text: _("Alarm:") }),
        document.createTextNode(" " + alarmText(alarm))]);
    }));
  }

  render() {
    const owner = this.owner;
    const live = owner.phase === "live";
    const state = owner.roomState;
    const lock = byId("lock-button");
    lock.disabled = !live;
    setPressed(lock, state.locked);
    lock.textContent = state.locked ? _("Unlock the meeting") : _("Lock the meeting");
    const lobby = byId("lobby-button");
    lobby.disabled = !live;
    setPressed(lobby, state.lobby_enabled);
    lobby.textContent = state.lobby_enabled ? _("Turn the lobby off") : _("Turn the lobby on");
    byId("console-locked").hidden = !state.locked;
    byId("console-lobby-on").hidden = !state.lobby_enabled;
    this.renderAlarms();
    this.renderHands(live);
    this.renderLobby(live);
    this.renderAgenda(live);
  }

  renderHands(live) {
    const owner = this.owner;
    const items = owner.hands.map(function (hand) {
      const p = owner.participants.get(hand.participant_id);
      const office = p ? officeName(p.info) : (hand.office_name || "");
      const name = hand.full_name || (p ? p.info.full_name : "");
      const button = el("button", { type: "button", className: "small secondary", text: _("Lower hand"),
        disabled: !live, "data-key": "hand-" + hand.participant_id,
        "aria-label": format(_("Lower the hand of %(name)s"), { name: name }) });
      button.addEventListener("click", function () {
        owner.moderate("lower_hand", hand.participant_id, format(_("The hand of %(name)s is lowered."), { name: name }), button);
      });
      return el("li", { "data-participant-id": hand.participant_id }, [
        el("span", { className: "who" }, [
          el("strong", { text: name }),
          office ? el("span", { className: "muted", text: office }) : null,
        ]),
        button,
      ]);
    });
    replaceKeepingFocus(byId("hands-list"), items);
    byId("hands-empty").hidden = items.length > 0;
    byId("hands-count").textContent = items.length ? "(" + number(items.length) + ")" : "";
  }

  renderLobby(live) {
    const owner = this.owner;
    const items = owner.lobby.map(function (waiting) {
      const name = waiting.full_name || "";
      const button = el("button", { type: "button", className: "small", text: _("Admit"), disabled: !live,
        "data-key": "admit-" + waiting.participant_id, "aria-label": format(_("Admit %(name)s"), { name: name }) });
      button.addEventListener("click", function () {
        owner.moderate("admit", waiting.participant_id, format(_("%(name)s was let in."), { name: name }), button);
      });
      return el("li", { "data-participant-id": waiting.participant_id }, [
        el("span", { className: "who" }, [
          el("strong", { text: name }),
          el("span", { className: "muted", text: officeName(waiting) }),
        ]),
        button,
      ]);
    });
    replaceKeepingFocus(byId("lobby-list"), items);
    byId("lobby-empty").hidden = items.length > 0;
    byId("lobby-empty").textContent = owner.roomState.lobby_enabled ? _("No one is waiting.")
      : _("The lobby is off: people join directly.");
    byId("lobby-count").textContent = items.length ? "(" + number(items.length) + ")" : "";
  }

  renderAgenda(live) {
    const owner = this.owner;
    const agenda = owner.agenda;
    byId("agenda-clear").disabled = !live || !agenda || !agenda.current_item_id;
    if (!agenda) {
      return; // the server-rendered list stays until the server's agenda arrives
    }
    let current = null;
    const items = agenda.items.map(function (item) {
      const isCurrent = item.id === agenda.current_item_id;
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
      const button = el("button", { type: "button", className: "small" + (isCurrent ? " secondary" : ""),
        text: isCurrent ? _("Current") : _("Make current"), disabled: !live || isCurrent,
        "data-key": "item-" + item.id, "aria-label": format(_("Make “%(title)s” the current item"), { title: item.title }) });
      button.addEventListener("click", function () {
        owner.act("set_agenda_item", { item_id: item.id }, format(_("Now: %(title)s"), { title: item.title }), button);
      });
      return el("li", { className: isCurrent ? "current" : "", "data-item-id": String(item.id),
        "aria-current": isCurrent ? "step" : null }, [
        el("span", { className: "who" }, [
          el("span", { className: "agenda-title", text: item.title }),
          details.length ? el("span", { className: "agenda-meta", text: details.join(" · ") }) : null,
        ]),
        button,
      ]);
    });
    replaceKeepingFocus(byId("agenda-list"), items);
    byId("agenda-empty").hidden = items.length > 0;
    const now = byId("agenda-current");
    now.hidden = !current;
    now.textContent = current ? format(_("Now: %(title)s"), { title: current.title }) : "";
  }
}
