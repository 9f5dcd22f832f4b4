// The console's vote panel: the chair or the secretariat opens a vote on an item with a question,
// watches the live tally and each site's ballot, and closes it. The server checks every request.

import { _, format } from "./i18n.js";
import { byId } from "./dom.js";
import { watchVotes } from "./vote-watch.js";

class ConsoleVotes {
  constructor(owner) {
    this.owner = owner;
    this.vote = null;
    const self = this;
    byId("vote-open-form").addEventListener("submit", function (event) {
      event.preventDefault();
      self.open();
    });
    byId("vote-close").addEventListener("click", function () { self.close(); });
    watchVotes(owner, function (vote) { self.vote = vote; self.render(); });
  }

  say(text) {
    byId("vote-console-status").textContent = text;
  }

  async open() {
    const signal = this.owner.signal;
    if (!signal) {
      return;
    }
    const reply = await signal.call("vote_open", {
      item_id: parseInt(byId("vote-item").value, 10),
      question: byId("vote-question-input").value,
    });
    this.say(reply.ok ? _("The vote is open.") : (reply.error ? reply.error.message : _("The vote could not be opened.")));
  }

  async close() {
    const signal = this.owner.signal;
    if (!signal || !this.vote) {
      return;
    }
    const reply = await signal.call("vote_close", { vote_id: this.vote.id });
    this.say(reply.ok ? _("The vote is closed.") : (reply.error ? reply.error.message : _("The vote could not be closed.")));
  }

  render() {
    const vote = this.vote;
    byId("vote-close").disabled = !vote || !vote.open;
    byId("vote-open-submit").disabled = Boolean(vote && vote.open);
    const summary = byId("vote-live");
    const list = byId("vote-ballots");
    list.textContent = "";
    if (!vote) {
      summary.textContent = _("No vote is open.");
      return;
    }
    summary.textContent = format(_("%(question)s — Yes %(yes)s · No %(no)s · Abstain %(abstain)s; sites present when opened: %(present)s of %(invited)s (quorum %(required)s)"), {
      question: vote.question, yes: vote.tally.yes, no: vote.tally.no, abstain: vote.tally.abstain,
      present: vote.quorum.present, invited: vote.quorum.invited, required: vote.quorum.required,
    });
    (vote.ballots || []).forEach(function (ballot) {
      const li = document.createElement("li");
      const choice = ballot.choice === "yes" ? _("Yes") : ballot.choice === "no" ? _("No") : _("Abstain");
      li.textContent = (document.documentElement.lang === "km" && ballot.office_km ? ballot.office_km : ballot.office) + ": " + choice;
      list.appendChild(li);
    });
  }
}

const panel = byId("vote-panel-console");
if (panel) {
  const start = setInterval(function () {
    if (window.cabinetConsole) {
      clearInterval(start);
      new ConsoleVotes(window.cabinetConsole);
    }
  }, 200);
}
