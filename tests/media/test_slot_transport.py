"""WebRtcTransport.create_slots without a peer: the one offer a receiving connection gets."""

from __future__ import annotations

import pytest

from media import MediaConfig, Router
from media.errors import InvalidStateError


@pytest.fixture
async def router():
    r = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="slots")
    yield r
    await r.close()


def m_sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    return sections


async def test_offer_has_one_sendonly_m_line_per_slot(router: Router) -> None:
    transport = router.create_transport("carol", "recv")
    slot_set = transport.create_slots(videos=3, audios=2)
    offer = await transport.create_offer()
    sections = m_sections(offer)
    assert [s[0].split()[0] for s in sections] == ["m=audio", "m=video", "m=video", "m=video", "m=video", "m=audio", "m=audio"]
    assert slot_set.slot_ids() == ["stage-audio", "stage-video", "video-0", "video-1", "video-2", "audio-0", "audio-1"]
    for section, slot in zip(sections, slot_set.slots.values()):
        assert "a=sendonly" in section
        codecs = sorted(line.split()[1].split("/")[0] for line in section if line.startswith("a=rtpmap:"))
        assert codecs == (["VP8", "rtx"] if slot.kind == "video" else ["opus", "red"])
        if slot.kind == "audio":  # RED (RFC 2198) names this m-line's Opus PT in its fmtp
            rtpmap = {line.split()[1].split("/")[0]: line.split()[0].split(":")[1] for line in section
                      if line.startswith("a=rtpmap:")}
            assert f"a=fmtp:{rtpmap['red']} {rtpmap['opus']}/{rtpmap['opus']}" in section
        (msid,) = [line for line in section if line.startswith("a=msid:")]
        assert msid == f"a=msid:{'stage' if slot.id.startswith('stage') else slot.id} {slot.id}"
        ssrcs = {int(line.split()[0].split(":")[1]) for line in section if line.startswith("a=ssrc:")}
        if slot.kind == "video":
            assert ssrcs == {slot.ssrc, slot.rtx_ssrc}
        else:
            assert slot.ssrc in ssrcs
    assert not any(s.ready for s in slot_set.slots.values()), "configured from the answer only"
    await transport.close()
    assert slot_set.closed and all(s.closed for s in slot_set.slots.values())


async def test_slots_are_created_once_before_the_first_offer(router: Router) -> None:
    with pytest.raises(InvalidStateError):
        router.create_transport("alice", "send").create_slots()
    transport = router.create_transport("carol", "recv")
    transport.create_slots(videos=1, audios=0)
    with pytest.raises(InvalidStateError):
        transport.create_slots()
    late = router.create_transport("dave", "recv")
    await late.create_offer()
    with pytest.raises(InvalidStateError):
        late.create_slots()
