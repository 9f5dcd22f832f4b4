"""Load generator process of the forwarding benchmark: lean publishers and subscribers.

Started by bench/forwarding.py (``python -m bench.loadgen``), one or more per run. Reads one JSON line
of configuration from stdin, then commands, one per line: ``subscribe``, ``ready`` (wait until each
subscribing site receives ``expect_video`` remote videos through its slots: packets on that many
video slots and, over the real signaling, ``slot`` events naming who they carry), ``offers`` (server
``offer`` events received per site: none in the slots protocol, where every receiving connection is
negotiated once, at subscribe),
``start`` (begin the measured window), ``stop`` (end it: print the result), ``quit``. Prints JSON lines:
``{"event": "published"}``, ``{"event": "subscribed"}``, ``{"event": "ready", ...}``, ``{"event": "offers", ...}``,
``{"event": "started"}``, ``{"event": "result", ...}``. With ``"late": true`` in its configuration the
process is one site joining a running session: it joins, publishes, subscribes at once and prints
``{"event": "late", ...}`` (its join request and first remote video times) when it sees a remote keyframe.

Kept cheaper than the server it measures:
  * publishers send pre-encoded, pre-packetized VP8/Opus (bench/media_loop.py) through aiortc
    transports whose senders are neutralized: per packet one header, one SRTP protect, one sendto;
  * subscribers answer their one offer (the slots; aiortc with bundlePolicy MAX_BUNDLE), never
    decode and bypass aiortc's receive chain: a hook on the ICE socket's
    ``datagram_received`` reads the (clear) RTP header for loss accounting and, when the payload
    carries a send timestamp trailer, SRTP-unprotects to read it (added delay). STUN and DTLS
    still go to aioice/aiortc, so consent freshness and DTLS keep working.

The private aioice/aiortc accesses of the generator (the datagram hook, the SRTP receive session)
are in :func:`bench.loadgen.subscribers.hook_datagrams`; the others go through media/aiortc_seams.py.

Modules: ``rtp`` (packet layout, send-time trailer, header extensions), ``publishers`` (pre-encoded
streams and their pacer), ``subscribers`` (receive-side accounting: loss, delay), ``control``
(Cabinet's signaling and the bench SFU's HTTP channel), ``janus`` (Janus VideoRoom over its HTTP API),
``sites`` (one site's connections), ``__main__`` (the process and its command loop).
"""
