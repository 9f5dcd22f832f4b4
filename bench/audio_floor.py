"""Which Opus / RED setting fits a 64 kbit/s link? Measured on real Chromium (libwebrtc's encoder).

Sites on poor links (5 % loss, 300 ms RTT) keep audio only with redundancy; RED (RFC 2198)
doubles the audio payload, so the Opus bitrate and the packet time must leave room for it and
for the per-packet headers. This measures the IP-level send rate of one audio stream for:

    a  Opus 24 kbit/s + RED (distance 1), 40 ms packets (ptime 40)
    b  Opus 16 kbit/s + RED (distance 1), 20 ms packets
    c  Opus 24 kbit/s without RED, 20 ms packets (reference)

each with ``useinbandfec=1;usedtx=1``. One headless Chromium page (launched as
tests/browser/browser_harness.py does: same executable and CHROMIUM_FLAGS, fake audio device) holds
two RTCPeerConnections connected to each other over loopback; no server. The answer the sender
receives is munged: ``red/48000/2`` moved first in the audio m-line when RED is wanted (libwebrtc
sends with the first codec of the remote description, and wraps Opus in RED when that is RED),
Opus fmtp ``maxaveragebitrate`` / ``useinbandfec`` / ``usedtx`` and ``a=ptime``. getStats then
confirms the codec the sender really used (``outbound-rtp`` -> ``codec.mimeType`` and payload
type, and the receiver's ``inbound-rtp`` codec) and the packet rate (the ptime).

Rate at the IP level over ``--seconds`` (20) after a warm-up, from the sender's getStats:

    RTP  = bytesSent + headerBytesSent + packetsSent * (28 + 10)     (IPv4 + UDP, SRTP auth tag)
    RTCP = the transport's bytes and packets that are not RTP (SRTCP, STUN consent), + 28 each
    total = RTP + RTCP, compared with 64 kbit/s.

Sources (``--sources``), all continuous except the last, so DTX never engages:

* ``tone``: a 440 Hz sine from WebAudio. Opus spends its whole target on it (the payload is the
  bitrate to the byte): the upper bound, and the main figure.
* ``voice``: a voiced-speech stand-in (sawtooth through formant filters, 4 Hz syllable swing).
* ``noise``: white noise; Opus codes it cheaply (band energies + folding), ~20 % under target.
* ``device``: Chromium's fake capture device itself. It does not play a continuous tone: it beeps
  (a short loud tone every 500 ms) and is silent in between, so with usedtx=1 most of the time is
  DTX (no packets, one 1-byte frame now and then): a lower bound, not a figure to plan with.
WebAudio starts on a real click (Playwright's, a trusted user gesture): the flags stay the harness's.

    .venv/bin/python bench/audio_floor.py [--seconds 20] [--sources tone,voice,noise,device] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

LINK_KBPS = 64.0
IP_UDP_BYTES = 28  # IPv4 (20) + UDP (8); loopback candidates here are IPv4
SRTP_TAG_BYTES = 10  # AES_CM_128_HMAC_SHA1_80 (libwebrtc's default would be GCM: 16; see "cipher" in the table)
#: A page of our own at an https origin (a secure context: getUserMedia), served by Playwright itself.
ORIGIN = "https://audio-floor.invalid/"


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    bitrate: int  # Opus maxaveragebitrate, bit/s
    ptime: int  # ms
    red: bool


SETTINGS = (
    Setting("a", "Opus 24k + RED, 40 ms", 24000, 40, True),
    Setting("b", "Opus 16k + RED, 20 ms", 16000, 20, True),
    Setting("c", "Opus 24k, 20 ms (no RED)", 24000, 20, False),
)

PAGE = """<!doctype html><meta charset="utf-8"><title>audio floor</title>
<button id="start">start</button>
<script>
window.audioTrack = null;
// A continuous source for WebAudio: started by a trusted click (autoplay policy).
window.makeSource = (kind) => {
  const ctx = new AudioContext({sampleRate: 48000});
  const dest = ctx.createMediaStreamDestination();
  const gain = ctx.createGain();
  gain.gain.value = kind === "noise" ? 0.25 : 0.5;
  let node;
  if (kind === "tone") {
    node = ctx.createOscillator();
    node.frequency.value = 440;
    node.connect(gain);
  } else if (kind === "voice") {
    // A voiced-speech stand-in: a 140 Hz sawtooth (5 Hz vibrato) through three formant filters,
    // its loudness swinging 4 times a second between 0.15 and 1 (syllables; never silent).
    node = ctx.createOscillator();
    node.type = "sawtooth";
    node.frequency.value = 140;
    const vibrato = ctx.createOscillator(), depth = ctx.createGain();
    vibrato.frequency.value = 5; depth.gain.value = 8;
    vibrato.connect(depth).connect(node.frequency); vibrato.start();
    const envelope = ctx.createGain();
    envelope.gain.value = 0.575;
    const syllables = ctx.createOscillator(), swing = ctx.createGain();
    syllables.frequency.value = 4; swing.gain.value = 0.425;
    syllables.connect(swing).connect(envelope.gain); syllables.start();
    for (const [f, q] of [[700, 5], [1220, 8], [2600, 10]]) {
      const formant = ctx.createBiquadFilter();
      formant.type = "bandpass"; formant.frequency.value = f; formant.Q.value = q;
      node.connect(formant).connect(envelope);
    }
    envelope.connect(gain);
    gain.gain.value = 2.0;
  } else {
    const buffer = ctx.createBuffer(1, 48000 * 3, 48000);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
    node = ctx.createBufferSource();
    node.buffer = buffer;
    node.loop = true;
    node.connect(gain);
  }
  gain.connect(dest);
  node.start();
  ctx.resume();
  window.audioContext = ctx;
  window.audioTrack = dest.stream.getAudioTracks()[0];
};
document.getElementById("start").addEventListener("click", () => window.makeSource(window.wantedSource));
</script>"""

RUN = """async ({setting, seconds, warmup, source}) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let track;
  if (source === "device") {
    const stream = await navigator.mediaDevices.getUserMedia({audio: {
      echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    track = stream.getAudioTracks()[0];
  } else {
    track = window.audioTrack;
  }
  // Encoded streams (pass-through) show what is really on the wire: getStats reports the codec
  // inside RED ("audio/opus") on both sides even when RED is sent.
  const sender = new RTCPeerConnection({encodedInsertableStreams: true});
  const receiver = new RTCPeerConnection({encodedInsertableStreams: true});
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  const wire = {sent: {}, received: {}, samples: [], sampling: false, frames: 0};
  const tap = (streams, counts, keep) => streams.readable.pipeThrough(new TransformStream({
    transform(frame, controller) {
      const pt = frame.getMetadata().payloadType;
      // Empty frames (Opus DTX) reach the transform but are never sent (libwebrtc's RTPSenderAudio).
      if (frame.data.byteLength === 0) { controller.enqueue(frame); return; }
      counts[pt] = (counts[pt] || 0) + 1;
      if (keep && wire.sampling) wire.frames++;
      if (keep && wire.sampling && wire.samples.length < 50) {
        wire.samples.push({pt, timestamp: frame.getMetadata().rtpTimestamp ?? frame.timestamp,
                           data: Array.from(new Uint8Array(frame.data))});
      }
      controller.enqueue(frame);
    }})).pipeTo(streams.writable);
  const transceiver = sender.addTransceiver(track, {direction: "sendonly"});
  tap(transceiver.sender.createEncodedStreams(), wire.sent, true);
  receiver.ontrack = (e) => tap(e.receiver.createEncodedStreams(), wire.received, false);

  // The answer the sender receives decides what it sends: codec order, Opus fmtp, ptime.
  const munge = (sdp) => {
    const lines = sdp.split("\\r\\n");
    const audio = lines.findIndex((l) => l.startsWith("m=audio"));
    const pts = lines[audio].split(" ").slice(3);
    const ptOf = (name) => {
      const line = lines.find((l) => l.toLowerCase().startsWith("a=rtpmap:") && l.toLowerCase().includes(" " + name + "/"));
      return line ? line.slice(9).split(" ")[0] : null;
    };
    const opus = ptOf("opus"), red = ptOf("red");
    if (!opus) throw new Error("no opus in the answer");
    if (setting.red && !red) throw new Error("no red/48000/2 in the answer");
    let order = pts.filter((pt) => pt !== opus && pt !== red);
    order = setting.red ? [red, opus, ...order] : [opus, ...order];  // (red stays negotiated in c, not first)
    if (!setting.red && red) order.push(red);
    lines[audio] = lines[audio].split(" ").slice(0, 3).concat(order).join(" ");
    const params = `minptime=10;useinbandfec=1;usedtx=1;maxaveragebitrate=${setting.bitrate}`;
    const fmtp = lines.findIndex((l) => l.startsWith(`a=fmtp:${opus} `));
    if (fmtp >= 0) lines[fmtp] = `a=fmtp:${opus} ${params}`;
    else lines.splice(audio + 1, 0, `a=fmtp:${opus} ${params}`);
    const oldPtime = lines.findIndex((l) => l.startsWith("a=ptime:") || l.startsWith("a=maxptime:"));
    if (oldPtime >= 0) lines.splice(oldPtime, 1);
    let end = lines.findIndex((l, i) => i > audio && l.startsWith("m="));
    if (end < 0) end = lines.length - 1;  // (the SDP ends with an empty line)
    lines.splice(end, 0, `a=ptime:${setting.ptime}`, `a=maxptime:${setting.ptime}`);
    return {sdp: lines.join("\\r\\n"), opus, red};
  };

  const offer = await sender.createOffer();
  await sender.setLocalDescription(offer);
  await receiver.setRemoteDescription(offer);
  const answer = await receiver.createAnswer();
  await receiver.setLocalDescription(answer);
  const munged = munge(answer.sdp);
  await sender.setRemoteDescription({type: "answer", sdp: munged.sdp});
  for (let i = 0; sender.connectionState !== "connected"; i++) {
    if (i > 100) throw new Error("not connected: " + sender.connectionState);
    await sleep(100);
  }
  const snapshot = async () => {
    const out = {t: performance.now(), sender: {}, receiver: {}};
    const collect = (report, into) => report.forEach((s) => {
      if (s.type === "outbound-rtp" || s.type === "inbound-rtp" || s.type === "transport" ||
          s.type === "media-source" || s.type === "codec" || s.type === "remote-inbound-rtp") into[s.id] = s;
    });
    collect(await sender.getStats(), out.sender);
    collect(await receiver.getStats(), out.receiver);
    return out;
  };
  await sleep(warmup * 1000);
  const first = await snapshot();
  wire.sampling = true;
  await sleep(seconds * 1000);
  const last = await snapshot();
  wire.sampling = false;
  sender.close();
  receiver.close();
  if (source === "device") track.stop();
  return {first, last, opusPt: munged.opus, redPt: munged.red, answer: munged.sdp,
          sent: wire.sent, received: wire.received, samples: wire.samples, frames: wire.frames};
}"""


def check_red(run: dict[str, Any], setting: Setting) -> str:
    """Parse the sampled sent payloads with :func:`media.red.parse_red`: RED ones must carry Opus
    blocks (the connection's Opus PT) and, when they carry redundancy, the previous packet one
    ptime earlier. Returns e.g. "48/50 with redundancy"; raises on a malformed or unexpected payload."""
    from media.red import parse_red

    red_pt = int(run["redPt"]) if run["redPt"] else -1
    opus_pt = int(run["opusPt"])
    red = [sample for sample in run["samples"] if sample["pt"] == red_pt]
    if not setting.red:
        if red:
            raise RuntimeError(f"{setting.name}: {len(red)} RED payloads sent without RED")
        return "-"
    with_redundancy = repeats_previous = 0
    previous: tuple[int, bytes] | None = None  # the last sample's timestamp and primary
    for sample in red:
        payload = parse_red(bytes(sample["data"]))
        if any(block.payload_type != opus_pt for block in payload.blocks):
            raise RuntimeError(f"{setting.name}: RED block payload types {[b.payload_type for b in payload.blocks]}, "
                               f"Opus is {opus_pt}")
        timestamp = int(sample["timestamp"]) & 0xFFFFFFFF
        if payload.redundant:
            with_redundancy += 1
            block = payload.redundant[-1]
            # libwebrtc repeats the last packet it kept: after DTX, one several ptimes back (and
            # it does not keep DTX frames, as media.red.RedEncoder does not).
            if not 0 < block.timestamp_offset <= 16383 or block.timestamp_offset % (setting.ptime * 48):
                raise RuntimeError(f"{setting.name}: redundant block offset {block.timestamp_offset} is not a "
                                   f"multiple of the ptime within 14 bits")
            if previous is not None and block.data == previous[1] and \
                    block.timestamp_offset == (timestamp - previous[0]) & 0xFFFFFFFF:
                repeats_previous += 1
        previous = (timestamp, payload.primary.data)
    return f"{with_redundancy}/{len(red)} with redundancy, {repeats_previous} of the packet just before"


def _one(stats: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [s for s in stats.values() if s["type"] == kind]
    if len(found) != 1:
        raise RuntimeError(f"expected one {kind} stats object, found {len(found)}")
    return found[0]


@dataclass
class Result:
    setting: str
    label: str
    source: str
    seconds: float
    codec: str  # what the wire carried: the payload type of the sender's encoded frames, by name
    payload_type: int
    received_payload_type: int  # the receiver's encoded frames (before RED is split)
    stats_codec: str  # what getStats says (the codec inside RED: "audio/opus" either way)
    red_checked: str  # sampled RED payloads parsed with media.red.parse_red
    cipher: str
    rtp_packets_per_s: float
    payload_bytes_per_packet: float  # bytesSent / media frames: the RTP payload (RED headers included)
    rtp_header_bytes_per_packet: float
    target_kbps: float  # libwebrtc's Opus target (outbound-rtp.targetBitrate)
    rtp_ip_kbps: float
    rtcp_ip_kbps: float
    total_kbps: float
    headroom_kbps: float
    feedback_kbps: float  # the receiver's sends (RTCP RR / transport-cc feedback, STUN), IP level: the other direction
    audio_level: float  # media-source audioLevel at the end (0..1)
    source_clock: float  # seconds of audio the source delivered per second of the stats clock
    frames_per_s: float  # non-empty encoded frames (= RTP packets with media); packets/s above it are
    #                      libwebrtc's bandwidth probes (padding-only packets), which the link carries too

    @classmethod
    def of(cls, setting: Setting, source: str, run: dict[str, Any]) -> Result:
        first, last = run["first"], run["last"]
        out0, out1 = _one(first["sender"], "outbound-rtp"), _one(last["sender"], "outbound-rtp")
        # The stats' own timestamps (the page's clock around the getStats calls overstates rates
        # by ~1.5 %: the first getStats of a connection is slow).
        seconds = (out1["timestamp"] - out0["timestamp"]) / 1000.0
        tr0, tr1 = _one(first["sender"], "transport"), _one(last["sender"], "transport")
        codec = last["sender"][out1["codecId"]]
        sent_pt = int(max(run["sent"], key=run["sent"].get))
        received_pt = int(max(run["received"], key=run["received"].get))
        names = {int(run["opusPt"]): "audio/opus"}
        if run["redPt"]:
            names[int(run["redPt"])] = "audio/red"
        packets = out1["packetsSent"] - out0["packetsSent"]
        payload = out1["bytesSent"] - out0["bytesSent"]
        headers = out1["headerBytesSent"] - out0["headerBytesSent"]
        rtp_ip = payload + headers + packets * (IP_UDP_BYTES + SRTP_TAG_BYTES)
        # What the transport sent besides the RTP packets (it counts SRTP packets, tag included).
        other_bytes = (tr1["bytesSent"] - tr0["bytesSent"]) - (payload + headers + packets * SRTP_TAG_BYTES)
        other_packets = (tr1["packetsSent"] - tr0["packetsSent"]) - packets
        rtcp_ip = max(0, other_bytes) + max(0, other_packets) * IP_UDP_BYTES
        total = (rtp_ip + rtcp_ip) * 8 / seconds / 1000
        rx0, rx1 = _one(first["receiver"], "transport"), _one(last["receiver"], "transport")
        feedback = (rx1["bytesSent"] - rx0["bytesSent"]) + (rx1["packetsSent"] - rx0["packetsSent"]) * IP_UDP_BYTES
        source_stats = _one(last["sender"], "media-source")
        source_seconds = source_stats.get("totalSamplesDuration", 0.0) - \
            _one(first["sender"], "media-source").get("totalSamplesDuration", 0.0)
        return cls(
            setting=setting.name, label=setting.label, source=source, seconds=round(seconds, 1),
            codec=names.get(sent_pt, "?"), payload_type=sent_pt, received_payload_type=received_pt,
            stats_codec=codec["mimeType"], red_checked=check_red(run, setting),
            cipher=tr1.get("srtpCipher", "?"),
            rtp_packets_per_s=packets / seconds,
            payload_bytes_per_packet=payload / run["frames"] if run["frames"] else 0.0,
            rtp_header_bytes_per_packet=headers / packets if packets else 0.0,
            target_kbps=out1.get("targetBitrate", 0) / 1000,
            rtp_ip_kbps=rtp_ip * 8 / seconds / 1000,
            rtcp_ip_kbps=rtcp_ip * 8 / seconds / 1000,
            total_kbps=total,
            headroom_kbps=LINK_KBPS - total,
            feedback_kbps=feedback * 8 / seconds / 1000,
            audio_level=source_stats.get("audioLevel", 0.0),
            source_clock=source_seconds / seconds,
            frames_per_s=run["frames"] / seconds,
        )


async def measure(page: Page, setting: Setting, source: str, seconds: float, warmup: float) -> Result:
    run = await page.evaluate(RUN, {"setting": asdict(setting), "seconds": seconds, "warmup": warmup, "source": source})
    result = Result.of(setting, source, run)
    wanted = "audio/red" if setting.red else "audio/opus"
    if result.codec != wanted or result.received_payload_type != result.payload_type:
        raise RuntimeError(f"{setting.name}: the sender sent {result.codec} (PT {result.payload_type}, all: {run['sent']}), "
                           f"the receiver got {run['received']}; wanted {wanted}\n{run['answer']}")
    expected_pps = 1000 / setting.ptime
    if not 0.85 * expected_pps <= result.rtp_packets_per_s <= 1.05 * expected_pps and source != "device":
        raise RuntimeError(f"{setting.name}: {result.rtp_packets_per_s:.1f} packets/s, not ptime {setting.ptime} ms")
    return result


async def main_async(args: argparse.Namespace) -> list[Result]:
    from browser_harness import launch  # the harness's executable and flags

    results: list[Result] = []
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            for source in args.sources:
                page = await browser.new_page()
                await page.route(ORIGIN, lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE))
                await page.goto(ORIGIN)
                if source != "device":
                    await page.evaluate("(s) => { window.wantedSource = s; }", source)
                    await page.click("#start")
                    await page.wait_for_function("window.audioTrack && window.audioContext.state === 'running'")
                for setting in SETTINGS:
                    if args.only and setting.name not in args.only:
                        continue
                    result = await measure(page, setting, source, args.seconds, args.warmup)
                    results.append(result)
                    if not args.json:
                        print(f"  {source:6} {setting.name}: {result.total_kbps:5.1f} kbit/s "
                              f"({result.codec}, PT {result.payload_type})", file=sys.stderr, flush=True)
                await page.close()
        finally:
            await browser.close()
    return results


def table(results: list[Result]) -> str:
    rows = ["| source | setting | on the wire (PT) | packets/s | payload B/media pkt | RTP hdr B/pkt | RTP kbit/s (IP) "
            "| RTCP kbit/s (IP) | total kbit/s | headroom vs 64 | feedback back, kbit/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.source} | {r.setting}: {r.label} | {r.codec} ({r.payload_type}) | {r.rtp_packets_per_s:.1f} "
                    f"| {r.payload_bytes_per_packet:.1f} | {r.rtp_header_bytes_per_packet:.1f} | {r.rtp_ip_kbps:.1f} "
                    f"| {r.rtcp_ip_kbps:.2f} | {r.total_kbps:.1f} | {r.headroom_kbps:+.1f} | {r.feedback_kbps:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured interval per setting")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after connecting before measuring")
    parser.add_argument("--sources", type=lambda s: s.split(","), default=["tone", "voice", "noise", "device"])
    parser.add_argument("--only", default="", help="settings to run, e.g. 'ab'")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print(f"{started}, Chromium via Playwright, {platform.machine()}, {args.seconds:g} s per setting after "
          f"{args.warmup:g} s warm-up; IP level = IPv4+UDP {IP_UDP_BYTES} B + SRTP tag {SRTP_TAG_BYTES} B per packet; "
          f"SRTP cipher {results[0].cipher if results else '?'}")
    print(table(results))
    for r in results:
        print(f"{r.source} {r.setting}: getStats codec {r.stats_codec}, receiver PT {r.received_payload_type}, "
              f"RED samples: {r.red_checked}, Opus target {r.target_kbps:g} kbit/s, audio level {r.audio_level:.2f}, "
              f"source clock x{r.source_clock:.3f}, media frames {r.frames_per_s:.1f}/s")


if __name__ == "__main__":
    main()
