"""The fuzzing campaign's short run (fuzz/, `python -m fuzz`), and the defects it found.

* Every corpus file (seeds and the inputs the campaign kept) goes through its target once, in process.
* A short atheris run of each target (a few thousand generated inputs; the long run is in README.md,
  "Fuzzing the network parsers").
* The harness itself: a target that crashes, or takes too long on one input, fails the run.
* Regression tests of what the campaign found, each failing on the code before its fix.
"""

from __future__ import annotations

import asyncio
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcconfiguration import RTCBundlePolicy

from fuzz import CORPUS, TARGETS, target
from media import MediaConfig, MediaError, Router
from media import aiortc_seams as seams
from signaling.errors import InvalidMessage
from signaling.protocol import schemas
from signaling.validation import MAX_PUBLISH_MEDIA, media_count, sdp

ROOT = Path(__file__).resolve().parent.parent
#: CPU time one input may take (the campaign's bound), and generated inputs per target in the suite.
MAX_MS = 1000
SHORT_RUNS = {"sdp": 1500, "signaling": 2000, "rtp": 2000, "rtcp": 5000, "vp8": 20000}

try:
    import atheris  # noqa: F401

    HAVE_ATHERIS = True
except ImportError:  # atheris publishes x86-64 Linux wheels only
    HAVE_ATHERIS = False
needs_atheris = pytest.mark.skipif(not HAVE_ATHERIS, reason=f"no atheris wheel for {platform.machine()}")


def fuzz(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def figures(stdout: str) -> dict[str, dict[str, float]]:
    """The table `python -m fuzz` prints: target -> column -> value."""
    lines = [line.split() for line in stdout.strip().splitlines() if line.strip()]
    header = ["inputs", "seconds", "rate", "crashes", "slowest_ms", "corpus", "new"]
    return {row[0]: dict(zip(header, map(float, row[1:]))) for row in lines[1:] if row and row[0] != "target"}


# -- the corpora ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_corpus_is_small_and_replays_clean(name: str) -> None:
    files = sorted((CORPUS / name).iterdir())
    assert 5 <= len(files) <= 200
    assert sum(path.stat().st_size for path in files) <= 1_000_000
    one_input = target(name).one_input
    for path in files:
        start = time.process_time()
        one_input(path.read_bytes())  # raises on a defect
        spent = (time.process_time() - start) * 1000
        assert spent < MAX_MS, f"{path.name}: {spent:.0f} ms"


# -- the short campaign -------------------------------------------------------------------------


@needs_atheris
@pytest.mark.parametrize("name", TARGETS)
def test_short_campaign(name: str, tmp_path: Path) -> None:
    runs = SHORT_RUNS[name]
    result = fuzz(name, "--runs", str(runs), "--max-ms", str(MAX_MS), "--work", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    row = figures(result.stdout)[name]
    assert row["crashes"] == 0 and row["inputs"] >= runs
    assert row["slowest_ms"] < MAX_MS


CANARY = '''
import time

def one_input(data: bytes) -> None:
    if MODE == "crash" and len(data) >= 3 and data[0] == 0x46:
        raise IndexError("the canary fell over")
    if MODE == "slow" and len(data) >= 3:
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
'''


@needs_atheris
@pytest.mark.parametrize("mode", ["crash", "slow"])
def test_the_harness_reports_crashes_and_slow_inputs(mode: str, tmp_path: Path) -> None:
    """A target raising on some input, or spending more than --max-ms on one, fails the run."""
    (tmp_path / "canary.py").write_text(f"MODE = {mode!r}\n{CANARY}")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    result = fuzz("canary", "--runs", "200000", "--max-ms", "20", "--work", str(tmp_path / "work"), env=env)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert figures(result.stdout)["canary"]["crashes"] == 1
    artifacts = list((tmp_path / "work" / "canary" / "artifacts").iterdir())
    assert len(artifacts) == 1
    expected = "IndexError: the canary fell over" if mode == "crash" else "SlowInput: one input took"
    assert expected in (tmp_path / "work" / "canary" / "fuzz.log").read_text()


def test_replay_command_covers_every_target() -> None:
    result = fuzz("replay", "all", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(figures(result.stdout)) == set(TARGETS)


# -- what the campaign found -------------------------------------------------------------------


def test_deeply_nested_payload_is_refused_not_an_internal_error() -> None:
    """A payload nested deeper than json.dumps goes raised RecursionError out of Schema.validate: the
    namespace's catch-all answered ``internal`` and logged a traceback for every such message."""
    nested: object = []
    for _ in range(20_000):
        nested = [nested]
    for event, schema in schemas(262_144).items():
        with pytest.raises(InvalidMessage, match="not plain JSON"):
            schema.validate(event, {"x": nested}, 262_144)


def test_deeply_nested_payload_through_the_namespace() -> None:
    depth = 990  # what json.loads (python-socketio's decoder) still accepts
    target("signaling").one_input(b'["ping", {"x": ' + b"[" * depth + b"]" * depth + b"}]")


@pytest.mark.parametrize("event", [b'{"a": 1}', b'["join"]', b"null", b"7"])
def test_an_event_name_that_is_not_a_string_is_refused(event: bytes) -> None:
    """python-socketio passes on whatever JSON value comes first; a list or an object raised TypeError
    (unhashable) out of MeetingNamespace.trigger_event, before any answer."""
    from fuzz.signaling import _LOOP, _NAMESPACE, FloodRule, _GRANT, Connection

    _NAMESPACE.connection = Connection(grant=_GRANT, flood=FloodRule(1e9, 10**9, 10**9), address="t")  # type: ignore[arg-type]
    ack = _LOOP.run_until_complete(_NAMESPACE.trigger_event(json.loads(event), "sid", {}))
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"


AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_sdp_lines_are_split_as_aiortc_splits_them(separator: str) -> None:
    """aiortc splits an SDP with str.splitlines(), which also breaks at U+2028, U+2029 and U+0085:
    m-lines hidden behind those went past media_count, so past MAX_PUBLISH_MEDIA and the answer's
    section count."""
    head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    smuggled = head + f"{AUDIO}\r\na=mid:0" + "".join(f"{separator}{AUDIO}{separator}a=mid:{i}" for i in range(1, 9)) + "\r\n"
    assert len(aiortc_sdp.SessionDescription.parse(smuggled).media) == 9
    assert media_count(smuggled) == 1
    for check in (sdp(262_144, MAX_PUBLISH_MEDIA), sdp(262_144)):
        with pytest.raises(InvalidMessage, match="is not an SDP line"):
            check("sdp", smuggled)
    target("sdp").one_input(smuggled.encode())


def _offer_with_bad_address(offer: str) -> str:
    """The offer with a media section's c= address aiortc reads but cannot write back."""
    lines = offer.split("\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("c="))
    lines[index] = "c=IN IP4 1nt-type"
    return "\r\n".join(lines)


async def _publisher_offer() -> str:
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver("audio", direction="sendonly")
    publisher.addTransceiver("video", direction="sendonly")
    offer = await publisher.createOffer()
    await publisher.close()
    return _offer_with_bad_address(offer.sdp)


async def test_remote_ssrcs_of_an_offer_aiortc_cannot_write_back() -> None:
    """remote_ssrcs read pc.remoteDescription, which re-serializes the description and raised
    ValueError for a c= address that is not an IP address (aiortc accepted the offer)."""
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await answerer.setRemoteDescription(RTCSessionDescription(sdp=await _publisher_offer(), type="offer"))
    for transceiver in answerer.getTransceivers():
        ssrc, _ = seams.remote_ssrcs(answerer, transceiver.mid)
        assert ssrc is not None
    await answerer.close()


async def test_publishing_an_offer_aiortc_cannot_write_back() -> None:
    """The publish path of a real transport: accept_offer, then produce() for each offered track
    raised ValueError (the client got ``internal``, the transport kept an offer with no producers)."""
    router = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="fuzz")
    try:
        transport = router.create_transport("alice", "send")
        await transport.accept_offer(await _publisher_offer())
        producers = [transport.produce(track.mid) for track in transport.offered_tracks()]
        assert sorted(p.kind for p in producers) == ["audio", "video"]
        assert all(p.ssrc is not None for p in producers)
    finally:
        await asyncio.wait_for(router.close(), 10)


async def test_an_answer_with_an_extension_id_the_sfu_cannot_write_is_refused() -> None:
    """A subscriber's answer may give the MID extension an id above 14 (aiortc accepts up to 255);
    configuring the m-line (now a Slot's) raised ValueError from accept_answer, past
    room.answer's MediaError guard (the client got ``internal``). Now the transport refuses it as a
    MediaError."""
    router = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="fuzz-answer")
    subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        transport = router.create_transport("bob", "recv")
        transport.create_slots(videos=1, audios=1)
        await subscriber.setRemoteDescription(RTCSessionDescription(sdp=await transport.create_offer(), type="offer"))
        answer = (await subscriber.createAnswer()).sdp
        bad = answer.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:200 urn:ietf:params:rtp-hdrext:sdes:mid")
        assert bad != answer
        with pytest.raises(MediaError, match="does not fit the one-byte form"):
            await transport.accept_answer(bad)
        await asyncio.to_thread(target("sdp").one_input, bad.encode())  # the target runs its own loop
    finally:
        await subscriber.close()
        await asyncio.wait_for(router.close(), 10)


async def test_an_ssrc_beyond_32_bits_counts_as_not_announced() -> None:
    """aiortc reads a=ssrc / a=ssrc-group values as any integer; remote_ssrcs handed 6745360144 to the
    producer, whose first PLI (asked for as soon as anyone subscribed) raised struct.error inside the
    subscriber's negotiation. Now such an SSRC is not announced and the producer learns the real one."""
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver("video", direction="sendonly")
    offer = (await publisher.createOffer()).sdp
    await publisher.close()
    group = next(line for line in offer.split("\r\n") if line.startswith("a=ssrc-group:FID "))
    media_ssrc = int(group.split()[1])
    bad = offer.replace(group, f"a=ssrc-group:FID 6745360144 {group.split()[2]}").replace(
        f"a=ssrc:{media_ssrc} ", "a=ssrc:-7 ")
    router = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="fuzz-ssrc")
    try:
        transport = router.create_transport("alice", "send")
        await transport.accept_offer(bad)
        (producer,) = [transport.produce(track.mid) for track in transport.offered_tracks()]
        assert producer.ssrc is None or 0 <= producer.ssrc <= 0xFFFFFFFF
        assert producer.rtx_ssrc is None or 0 <= producer.rtx_ssrc <= 0xFFFFFFFF
        producer.request_keyframe()  # what a slot asks for first when it takes this producer
    finally:
        await asyncio.wait_for(router.close(), 10)
