"""The signaling protocol: client events, their schemas, and the server's events.

Client -> server (each with an acknowledgement ``{"ok": true, ...}`` or an error)::

    join        {last_n?, client?, quality?} -> participant_id, meeting, me, permissions, roster, tracks,
                                          dominant_speaker, ice_servers
    publish     {sdp}   (an offer)     -> sdp (answer), producers [{producer_id, kind, mid}]
                                          (at most 4 media sections: signaling/validation.py)
    subscribe   {videos?, audios?}     -> sdp (offer), revision 1, slots [{slot_id, kind, mid, stream_id,
                                          track_id}]: the receiving connection, negotiated once with the
                                          stage (stage-audio + stage-video, msid stream "stage"), ``videos``
                                          thumbnails video-0.. (0..8, default 8) and ``audios`` extra voices
                                          audio-0.. (0..2, default 2); never renegotiated (media/slot_set.py)
    answer      {sdp, revision}        -> {}            (answers that one offer, revision 1, with as
                                                         many media sections as it had)
    pin         {participant_id|null}  -> {}            (put someone on one's own stage; null: unpin)
    mute        {kind, muted}          -> {}            (the participant's own microphone/camera)
    set_last_n  {n}                    -> {}            (videos received, the stage's included)
    set_quality {mode}                 -> {}            (the site's choice: auto | low | audio; signaling/links.py)
    set_view    {slots}                -> {}            ({slot_id: {visible, width?, height?}}: the tiles the page
                                                         shows; a hidden one is paused on request)
    restart     {transport}            -> {}            (drop a failed send/recv connection to rebuild it)
    leave       {}                     -> {}            (then the server disconnects)
    ping        {}                     -> {}            (round-trip test before or during a session)
    raise_hand  {} / lower_hand {}     -> {}            (queue broadcast as ``hands``)
    stats       {rtt_ms, loss_percent, bitrate_kbps}   (every few seconds; broadcast as ``quality``)
    moderate    {action, participant_id?, person_id?}  moderators only: mute | unmute | remove | admit
                                       | lower_hand | lock | unlock | lobby_on | lobby_off | spotlight (someone
                                       on everyone's stage) | spotlight_off, and readmit
                                       {person_id}: let a removed person back in (mute and removal bind the
                                       person until lifted, across reconnects and restarts)
    set_agenda_item {item_id | null}   moderators only; broadcast as ``agenda``
    vote_open   {item_id, question}    the chair / secretariat -> vote_id   (quorum recorded at opening)
    vote_cast   {vote_id, choice}      yes | no | abstain; one ballot per site, a later one replaces it
    vote_close  {vote_id}              the chair / secretariat -> vote (with the tally)
    vote_state  {}                     -> vote (the open one, or null), my_site_choice
    session, floor, roll_call, excuse, register: running the session, see signaling/floor_protocol.py

Server -> client::

    participant_joined {participant}, participant_left {participant_id},
    track_added {producer_id, participant_id, kind}, track_removed {...},
    slot {slot_id, mid, producer_id, participant_id, sequence, rtp_timestamp, rtp_sequence_number} (the
    first packet of producer_id went out on that slot at that RTP timestamp: name the tile from the frame
    with that timestamp on; producer_id null: the slot went empty; rtp_timestamp -1: an audio slot, or a
    video slot that is paused and carries that producer from its next keyframe on; apply per slot in
    sequence order),
    slot_state {estimate_kbps, loss_percent, mode, probing, red, rtt_ms, slots {slot_id: {state, layer}}} (this site's
    budget: state active | paused_bandwidth | paused_request | empty, layer 0..2 or -1; on change and
    every 2 s), links {sites {participant_id: {estimate_kbps, sending_kbps, loss_percent, mode,
    stage_layer, state good | reduced | weak | audio_only}}} (every site's link, at most every 3 s),
    video_wanted {producer_id, wanted} (to the publisher: nobody has taken its camera for 3 s, so stop
    sending it; or someone does again, so start; media/watchers.py),
    dominant_speaker {participant_id}, spotlight {participant_id | null},
    mute_changed {participant_id, kind, muted, by}, hands {queue}, quality {participant_id, ...},
    agenda {items, current_item_id}, room_state {locked, lobby_enabled},
    vote {id, item_id, question, open, quorum, tally, voted_office_ids, ballots (moderators; all once
    closed)}, lobby {waiting} (moderators), presence {people} (moderators), admitted {join payload} (to the
    admitted participant), removed {reason} (to the removed participant), transport_state,
    closing {code, message} (just before the server closes this connection; code ``flooding``: the client
    went on sending after ``signaling.flood_disconnect_after`` refusals in a row, see signaling/ratelimit.py),
    alarm {code, message, since, cleared: false} / {code, cleared: true} (moderators of every live room: the
    server cannot save, code ``disk_full`` | ``read_only`` | ``busy``, and when that clears; see
    signaling/alarms.py and meetings/storage.py; a console opened meanwhile reads ``problems`` of /api/health)
"""

from __future__ import annotations

from signaling import votes
from signaling.floor_protocol import FLOOR_EVENTS, FLOOR_SCHEMAS
from media.allocation import MODES
from signaling.validation import (
    MAX_PUBLISH_MEDIA,
    Schema,
    boolean,
    identifier,
    integer,
    nullable,
    number,
    one_of,
    sdp,
    slot_views,
)

MODERATION = ("mute", "unmute", "remove", "readmit", "admit", "lower_hand", "lock", "unlock", "lobby_on", "lobby_off",
              "spotlight", "spotlight_off")
#: A receiving connection's slots (subscribe): thumbnails and extra voices besides the stage.
DEFAULT_VIDEO_SLOTS = 8
DEFAULT_AUDIO_SLOTS = 2
MAX_VIDEO_SLOTS = 8
MAX_AUDIO_SLOTS = 2


def schemas(max_sdp_bytes: int) -> dict[str, Schema]:
    sdp_check = sdp(max_sdp_bytes)
    return {
        "join": Schema(optional={"last_n": integer(0, 64), "client": one_of("room", "console"),
                                 "quality": one_of(*MODES)}),
        "publish": Schema(required={"sdp": sdp(max_sdp_bytes, MAX_PUBLISH_MEDIA)}),
        "subscribe": Schema(optional={"videos": integer(0, MAX_VIDEO_SLOTS), "audios": integer(0, MAX_AUDIO_SLOTS)}),
        "answer": Schema(required={"sdp": sdp_check, "revision": integer(1, 2**31)}),
        "pin": Schema(required={"participant_id": nullable(identifier())}),
        "mute": Schema(required={"kind": one_of("audio", "video"), "muted": boolean}),
        "set_last_n": Schema(required={"n": integer(0, 64)}),
        "set_quality": Schema(required={"mode": one_of(*MODES)}),
        "set_view": Schema(required={"slots": slot_views(MAX_VIDEO_SLOTS + 1)}),
        "restart": Schema(required={"transport": one_of("send", "recv")}),
        "leave": Schema(),
        "ping": Schema(),
        "raise_hand": Schema(),
        "lower_hand": Schema(),
        "stats": Schema(optional={"rtt_ms": nullable(number(0, 60_000)), "loss_percent": nullable(number(0, 100)),
                                  "bitrate_kbps": nullable(number(0, 1_000_000))}),
        "moderate": Schema(required={"action": one_of(*MODERATION)},
                           optional={"participant_id": identifier(), "person_id": integer(1, 2**31)}),
        "set_agenda_item": Schema(required={"item_id": nullable(integer(1, 2**31))}),
        **votes.SCHEMAS,
        **FLOOR_SCHEMAS,
    }


CLIENT_EVENTS = frozenset({"join", "publish", "subscribe", "answer", "pin", "mute", "set_last_n", "set_quality",
                           "set_view", "restart", "leave", "ping",
                           "raise_hand", "lower_hand", "stats", "moderate", "set_agenda_item"}) | votes.EVENTS | FLOOR_EVENTS
