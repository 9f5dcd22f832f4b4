// The running session on the meeting page and the console: session state, the floor holder with a
// countdown, the current item's timer, the live quorum, and the roll call. Moderators also get the
// controls (open/close, give the floor from the raised hands with an optional limit, revoke, roll call).
//
// Usage: const panel = new SessionPanel(element); then after every join: panel.attach(signal, joined).

import { _, format, number } from "./i18n.js";

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text) {
    node.textContent = text;
  }
  Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return number(Math.floor(s / 60)) + ":" + (s % 60 < 10 ? number(0) : "") + number(s % 60);
}

export class SessionPanel {
  constructor(root) {
    this.root = root;
    this.signal = null;
    this.me = null;
    this.moderator = false;
    this.session = { state: "scheduled" };
    this.floor = { holder: null };
    this.floorReceivedAt = 0;
    this.quorum = null;
    this.rollCall = null;
    this.agenda = { items: [], current_item_id: null };
    this.hands = [];
    this.timer = window.setInterval(this.tick.bind(this), 1000);
  }

  attach(signal, joined) {
    const self = this;
    this.signal = signal;
    this.me = joined.me || null;
    this.moderator = Boolean(joined.permissions && joined.permissions.moderate);
    this.onSession(joined.session || this.session);
    this.onFloor(joined.floor || { holder: null });
    this.quorum = joined.quorum || null;
    this.rollCall = joined.roll_call || null;
    this.agenda = joined.agenda || this.agenda;
    this.hands = (joined.hands && joined.hands.queue) || joined.hands || [];
    const handlers = {
      session: this.onSession,
      floor: this.onFloor,
      quorum: function (data) { self.quorum = data.quorum; },
      roll_call: function (data) { self.rollCall = data.roll_call; },
      agenda: function (data) { self.agenda = data; },
      hands: function (data) { self.hands = Array.isArray(data.queue) ? data.queue : []; },
    };
    Object.keys(handlers).forEach(function (event) {
      signal.on(event, function (data) {
        if (self.signal === signal && data && typeof data === "object") {
          handlers[event].call(self, data);
          self.render();
        }
      });
    });
    this.render();
  }

  onSession(data) { this.session = data; }

  onFloor(data) {
    this.floor = data;
    this.floorReceivedAt = Date.now();
  }

  async send(event, data) {
    if (!this.signal) {
      return;
    }
    const reply = await this.signal.call(event, data);
    const error = this.root.querySelector(".session-error");
    if (error) {
      error.textContent = reply.ok ? "" : reply.error.message;
    }
  }

  remaining() {
    const holder = this.floor && this.floor.holder;
    if (!holder || holder.remaining_seconds === null || holder.remaining_seconds === undefined) {
      return null;
    }
    return holder.remaining_seconds - (Date.now() - this.floorReceivedAt) / 1000;
  }

  currentItem() {
    const id = this.agenda.current_item_id;
    return (this.agenda.items || []).filter(function (i) { return i.id === id; })[0] || null;
  }

  tick() {
    const countdown = this.root.querySelector(".floor-countdown");
    const left = this.remaining();
    if (countdown && left !== null) {
      countdown.textContent = format(_("%(time)s left"), { time: clock(left) });
    }
    const timer = this.root.querySelector(".item-timer");
    const item = this.currentItem();
    if (timer && item && item.started_at) {
      const elapsed = (Date.now() - Date.parse(item.started_at)) / 1000;
      const planned = item.planned_minutes * 60;
      timer.textContent = format(_("%(elapsed)s of %(planned)s min"), { elapsed: clock(elapsed),
        planned: number(item.planned_minutes) });
      timer.classList.toggle("overrun", elapsed > planned);
      if (elapsed > planned) {
        timer.textContent += " — " + format(_("over by %(time)s"), { time: clock(elapsed - planned) });
      }
    }
  }

  render() {
    const self = this;
    const root = this.root;
    root.replaceChildren();
    const states = { scheduled: _("The session has not been opened: everyone is heard (sound check)."),
      open: _("The session is open."), closed: _("The session is closed.") };
    root.append(el("h2", _("Session")), el("p", states[this.session.state] || "", { class: "session-state" }));
    const item = this.currentItem();
    if (item) {
      root.append(el("p", format(_("Current item: %(title)s"), { title: item.title }), { class: "session-item" }),
        el("p", "", { class: "item-timer", "aria-live": "off" }));
    }
    const holder = this.floor && this.floor.holder;
    const floorText = holder ? format(_("%(name)s (%(office)s) has the floor"),
      { name: holder.full_name, office: holder.office_name }) : _("Nobody has the floor.");
    root.append(el("p", floorText, { class: "floor-holder", "aria-live": "polite" }));
    if (holder && holder.limit_seconds) {
      root.append(el("p", "", { class: "floor-countdown", "aria-live": "off" }));
    }
    if (!this.moderator && this.session.state === "open" && this.me) {
      const mine = holder && holder.person_id === this.me.person_id;
      root.append(el("p", mine ? _("You have the floor.")
        : _("Your microphone is not forwarded until the chair gives you the floor."), { class: "floor-me" }));
      if (mine) {
        this.button(root, _("Yield the floor"), function () { self.send("floor", { action: "yield" }); });
      }
    }
    if (this.quorum) {
      const q = this.quorum;
      root.append(el("p", format(_("%(present)s of %(invited)s sites present — quorum %(required)s: %(verdict)s"), {
        present: number(q.present), invited: number(q.invited), required: number(q.required),
        verdict: q.met ? _("met") : _("not met") }), { class: "quorum " + (q.met ? "met" : "not-met") }));
    }
    this.renderRollCall(root);
    if (this.moderator && this.session.run_by_host) {
      root.append(el("p", _("This session is run from its host's hall: it is opened, closed and the floor is given there."),
        { class: "run-by-host" }));
    } else if (this.moderator) {
      this.renderControls(root);
    }
    root.append(el("p", "", { class: "session-error error", role: "alert" }));
    this.tick();
  }

  button(parent, label, onClick) {
    const b = el("button", label, { type: "button", class: "control" });
    b.addEventListener("click", onClick);
    parent.append(b);
    return b;
  }

  renderRollCall(root) {
    const self = this;
    const call = this.rollCall;
    if (!call || !call.open) {
      return;
    }
    const box = el("div", "", { class: "roll-call", role: "region", "aria-label": _("Roll call") });
    box.append(el("h3", _("Roll call")));
    if (this.me && !this.moderator) {
      const answered = call.answered.indexOf(this.me.office_id) >= 0;
      if (answered) {
        box.append(el("p", _("Your office has answered the roll call.")));
      } else {
        this.button(box, _("Roll call — I am present"), function () { self.send("roll_call", { action: "answer" }); });
      }
    }
    if (this.moderator && Array.isArray(call.sites)) {
      const list = el("ul", "", { class: "roll-call-sites" });
      call.sites.forEach(function (site) {
        const yes = call.answered.indexOf(site.office_id) >= 0;
        list.append(el("li", (yes ? "✓ " : "… ") + site.name + (yes ? "" : " — " + _("not answered")),
          { class: yes ? "answered" : "waiting" }));
      });
      box.append(el("p", format(_("%(answered)s of %(total)s sites answered"),
        { answered: number(call.answered.length), total: number(call.sites.length) })), list);
    }
    root.append(box);
  }

  renderControls(root) {
    const self = this;
    const controls = el("div", "", { class: "session-controls" });
    if (this.session.state === "scheduled") {
      this.button(controls, _("Open the session"), function () { self.send("session", { action: "open" }); });
    } else if (this.session.state === "open") {
      this.button(controls, _("Close the session"), function () {
        if (window.confirm(_("Close the session? The floor and attendance end now."))) {
          self.send("session", { action: "close" });
        }
      });
      const call = this.rollCall && this.rollCall.open;
      this.button(controls, call ? _("Close the roll call") : _("Call the roll"), function () {
        self.send("roll_call", { action: call ? "close" : "start" });
      });
      if (this.floor && this.floor.holder) {
        this.button(controls, _("Take back the floor"), function () { self.send("floor", { action: "revoke" }); });
      }
    }
    root.append(controls);
    if (this.session.state !== "open" || !this.hands.length) {
      return;
    }
    const limit = el("input", "", { type: "number", min: "0", max: "240", step: "1", value: "0",
      class: "floor-limit", "aria-label": _("Time limit in minutes (0: none)") });
    const label = el("label", _("Time limit in minutes (0: none)"));
    label.append(limit);
    const list = el("ol", "", { class: "floor-hands" });
    this.hands.forEach(function (hand) {
      const li = el("li", hand.full_name + " (" + hand.office_name + ") ");
      self.button(li, _("Give the floor"), function () {
        const minutes = parseInt(limit.value, 10);
        const data = { action: "grant", participant_id: hand.participant_id };
        if (minutes > 0) {
          data.limit_seconds = minutes * 60;
        }
        self.send("floor", data);
      });
      list.append(li);
    });
    root.append(label, list);
  }
}
