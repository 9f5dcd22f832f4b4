"""socket.io signaling: join a meeting with a join token, negotiate media with the SFU, room events.

A connection presents a short-lived join token minted by meetings/ (``auth={"token": ...}``); the
meeting, the person and their roles come from the verified token, never from a message. Every
client event is validated (shape, types, sizes, SDP) and rate-limited; a bad one is answered with
``{"ok": false, "error": {"code", "message"}}`` and changes nothing. See ``signaling.protocol`` for
the events.
"""
