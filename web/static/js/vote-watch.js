// Shared by the room's vote panel and the console's vote panel: follow the owner's current signaling
// connection (it is replaced on every reconnect), listen for "vote" pushes and ask for the open vote
// (vote_state) on each new connection, so a reload or a server restart shows the vote from the database.
// On a provincial node's page of a centre-hosted session the ballot is carried to the centre, which may
// refuse it later ("vote_refused": onRefused).

const WATCH_MS = 1000;

export function watchVotes(owner, onVote, onRefused) {
  let bound = null;
  setInterval(async function () {
    const signal = owner.signal;
    if (!signal || signal === bound || !signal.connected || !owner.participantId) {
      return;
    }
    bound = signal;
    signal.on("vote", function (data) {
      if (owner.signal === signal && data && typeof data === "object") {
        onVote(data, null);
      }
    });
    if (onRefused) {
      signal.on("vote_refused", function (data) {
        if (owner.signal === signal && data && typeof data === "object") {
          onRefused(data);
        }
      });
    }
    const reply = await signal.call("vote_state", {});
    if (reply.ok && owner.signal === signal) {
      onVote(reply.vote, reply.my_site_choice || null);
    }
  }, WATCH_MS);
}
