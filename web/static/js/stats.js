// Connection quality from RTCPeerConnection.getStats: round-trip time, loss and bitrate.

function selectedPairRtt(report) {
  let pairId = null;
  report.forEach(function (s) {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pairId = s.selectedCandidatePairId;
    }
  });
  let rtt = null;
  report.forEach(function (s) {
    if (s.type !== "candidate-pair") {
      return;
    }
    const selected = pairId ? s.id === pairId : (s.nominated && s.state === "succeeded");
    if (selected && typeof s.currentRoundTripTime === "number") {
      rtt = s.currentRoundTripTime * 1000;
    }
  });
  return rtt;
}

/** Samples both connections and reports differences since the previous sample. */
export class QualitySampler {
  constructor() {
    this.previous = null;
  }

  reset() {
    this.previous = null;
  }

  async sample(sendPc, recvPc) {
    const now = performance.now();
    const totals = { sentBytes: 0, receivedBytes: 0, received: 0, lost: 0 };
    let rtt = null;
    let upstreamLoss = null;
    const reports = [];
    for (const pc of [sendPc, recvPc]) {
      if (pc && pc.connectionState !== "closed") {
        try {
          reports.push(await pc.getStats());
        } catch (error) {
          // a connection closing under us: skip it
        }
      }
    }
    reports.forEach(function (report) {
      const pairRtt = selectedPairRtt(report);
      if (pairRtt !== null) {
        rtt = rtt === null ? pairRtt : Math.min(rtt, pairRtt);
      }
      report.forEach(function (s) {
        if (s.type === "outbound-rtp") {
          totals.sentBytes += s.bytesSent || 0;
        } else if (s.type === "inbound-rtp") {
          totals.receivedBytes += s.bytesReceived || 0;
          totals.received += s.packetsReceived || 0;
          totals.lost += Math.max(0, s.packetsLost || 0);
        } else if (s.type === "remote-inbound-rtp") {
          if (typeof s.fractionLost === "number") {
            upstreamLoss = Math.max(upstreamLoss || 0, s.fractionLost * 100);
          }
          if (rtt === null && typeof s.roundTripTime === "number") {
            rtt = s.roundTripTime * 1000;
          }
        }
      });
    });
    const previous = this.previous;
    this.previous = { at: now, totals: totals };
    const summary = { rtt_ms: rtt === null ? null : Math.round(rtt), loss_percent: null, bitrate_kbps: null };
    if (previous) {
      const seconds = (now - previous.at) / 1000;
      const received = totals.received - previous.totals.received;
      const lost = totals.lost - previous.totals.lost;
      let loss = upstreamLoss;
      if (received + lost > 0) {
        const downstream = (100 * Math.max(0, lost)) / (received + Math.max(0, lost));
        loss = loss === null ? downstream : Math.max(loss, downstream);
      }
      summary.loss_percent = loss === null ? null : Math.round(loss * 10) / 10;
      if (seconds > 0) {
        // What this site sends if it publishes, otherwise what it receives.
        const bytes = sendPc ? totals.sentBytes - previous.totals.sentBytes
          : totals.receivedBytes - previous.totals.receivedBytes;
        summary.bitrate_kbps = Math.max(0, Math.round((bytes * 8) / seconds / 1000));
      }
    } else if (upstreamLoss !== null) {
      summary.loss_percent = Math.round(upstreamLoss * 10) / 10;
    }
    return summary;
  }
}

/** good / fair / poor, from a summary (unknown values do not count against a site). */
export function qualityLevel(summary) {
  if (!summary) {
    return "unknown";
  }
  const rtt = summary.rtt_ms;
  const loss = summary.loss_percent;
  if (rtt === null && loss === null) {
    return "unknown";
  }
  if ((rtt !== null && rtt > 400) || (loss !== null && loss > 8)) {
    return "poor";
  }
  if ((rtt !== null && rtt > 150) || (loss !== null && loss > 2)) {
    return "fair";
  }
  return "good";
}

/** What the tests (and a curious technician) can read: per remote track, decoding and audio energy. */
export async function inboundSummary(recvPc) {
  const out = [];
  if (!recvPc) {
    return out;
  }
  const report = await recvPc.getStats();
  report.forEach(function (s) {
    if (s.type === "inbound-rtp") {
      out.push({
        kind: s.kind,
        mid: s.mid === undefined ? null : String(s.mid),
        packetsReceived: s.packetsReceived || 0,
        bytesReceived: s.bytesReceived || 0,
        framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0,
        frameWidth: s.frameWidth || 0,
        audioLevel: s.audioLevel || 0,
        totalAudioEnergy: s.totalAudioEnergy || 0,
        totalSamplesReceived: s.totalSamplesReceived || 0,
        // Playout: lip sync of the stage's audio and video (same MediaStream, one sync group).
        estimatedPlayoutTimestamp: typeof s.estimatedPlayoutTimestamp === "number" ? s.estimatedPlayoutTimestamp : null,
        jitterBufferDelay: s.jitterBufferDelay || 0,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount || 0,
        timestamp: s.timestamp,
      });
    }
  });
  return out;
}
