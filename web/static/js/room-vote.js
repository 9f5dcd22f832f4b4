// The participant's vote panel: shown while the chair has a vote open; one ballot per site (a later
// choice from anyone of the same office replaces it). Observers see the question and tally only.

import { _, format } from "./i18n.js";
import { byId } from "./dom.js";
import { watchVotes } from "./vote-watch.js";

const CHOICES = ["yes", "no", "abstain"];

class VotePanel {
  constructor(room, panel) {
    this.room = room;
    this.panel = panel;
    this.vote = null;
    this.mine = null;
    this.mayVote = panel.dataset.mayVote === "true";
    const self = this;
    CHOICES.forEach(function (choice) {
      byId("vote-" + choice).addEventListener("click", function () { self.cast(choice); });
    });
    watchVotes(room, function (vote, mine) { self.update(vote, mine); }, function (refused) {
      self.mine = null;
      byId("vote-status").textContent = refused.message || _("The vote could not be cast.");
      self.render();
    });
  }

  update(vote, mine) {
    if (vote && this.vote && vote.id !== this.vote.id) {
      this.mine = null;
    }
    this.vote = vote;
    if (mine !== null && mine !== undefined) {
      this.mine = mine;
    }
    this.render();
  }

  async cast(choice) {
    if (!this.vote || !this.vote.open || !this.room.signal) {
      return;
    }
    const reply = await this.room.signal.call("vote_cast", { vote_id: this.vote.id, choice: choice });
    const status = byId("vote-status");
    if (reply.ok) {
      this.mine = choice;
      status.textContent = format(_("Your site's vote: %(choice)s"), { choice: label(choice) });
    } else {
      status.textContent = reply.error ? reply.error.message : _("The vote could not be cast.");
    }
    this.render();
  }

  render() {
    const vote = this.vote;
    this.panel.hidden = !vote;
    if (!vote) {
      return;
    }
    byId("vote-question").textContent = vote.question;
    byId("vote-state").textContent = vote.open ? _("Voting is open") : _("Voting is closed");
    byId("vote-tally").textContent = format(_("Yes %(yes)s · No %(no)s · Abstain %(abstain)s"), vote.tally);
    const self = this;
    CHOICES.forEach(function (choice) {
      const button = byId("vote-" + choice);
      button.hidden = !self.mayVote;
      button.disabled = !vote.open;
      button.setAttribute("aria-pressed", self.mine === choice ? "true" : "false");
    });
  }
}

function label(choice) {
  return choice === "yes" ? _("Yes") : choice === "no" ? _("No") : _("Abstain");
}

const panel = byId("vote-panel");
if (panel) {
  const start = setInterval(function () {
    if (window.cabinetRoom) {
      clearInterval(start);
      new VotePanel(window.cabinetRoom, panel);
    }
  }, 200);
}
