"""``python -m bots``: join a meeting as a bot, publish and/or subscribe, print a report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TextIO

from .bot import BotOptions, run_bot
from .errors import BotError
from .login import LoginTokenSource
from .media_files import MediaParams
from .tokens import StaticToken, TokenSource

EPILOG = """\
Reconnection: like the web page, a bot whose connection is lost (network, server restart) tears
down its media, waits 0.5 s, then retries backing off up to 5 s, each time with a NEW join token,
and joins, publishes and subscribes again; it stops if the server refuses it (removed from the
meeting, login refused or ended for good). Only a logged-in bot (--username, --password-stdin,
--meeting) can reconnect: a --token join token is single-use, so a bot given one connects once and
cannot reconnect; it reports a lost connection as an error. --no-reconnect turns reconnection off.
The report counts reconnects and lists every connection (UTC times connected, joined and ended).

Receiving: the bot subscribes once with its slots (the stage's audio and video, --videos thumbnails,
--audios extra voices) and answers the one offer; the server's slot events say who each slot
carries. Every stream in the report is one slot, named after the participant it carries now; its
stamped frames are checked against that (identity mismatches). A server offer after the join is
an error (offers_after_join must be 0).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bots",
        description="Cabinet test bot: joins a meeting, publishes pre-encoded VP8/Opus and/or subscribes, "
        "and reports frames, loss, freezes and latency.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    auth = parser.add_argument_group("authentication (a token, or a login)")
    auth.add_argument("--token", help="join token (single-use: a bot given one cannot reconnect)")
    auth.add_argument("--username", help="log in as this user to obtain join tokens (one per connection)")
    auth.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    auth.add_argument("--meeting", type=int, help="meeting id to obtain a join token for")
    parser.add_argument("--publish", action="store_true", help="publish audio and video (default: both roles)")
    parser.add_argument("--subscribe", action="store_true", help="subscribe to everybody else")
    parser.add_argument("--lean", action="store_true", help="lean subscriber: count packets, decode only a sample")
    parser.add_argument("--videos", type=int, default=8, choices=range(0, 9), metavar="0..8",
                        help="video slots besides the stage (thumbnails) asked for at subscribe (default 8)")
    parser.add_argument("--audios", type=int, default=2, choices=range(0, 3), metavar="0..2",
                        help="audio slots besides the stage's voice asked for at subscribe (default 2)")
    parser.add_argument("--decode", choices=["all", "stage"], default="all",
                        help="full subscriber: decode every slot (default) or only the stage's audio and video")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to stay (default 10)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of a summary")
    parser.add_argument("--name", default="bot", help="name in the report")
    parser.add_argument("--progress", type=Path, metavar="FILE",
                        help="append a JSON line each second: seconds since the start, frames per stream so far")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--silent", action="store_true", help="publish silence instead of speech")
    parser.add_argument("--cache-dir", type=Path, help="pre-encoded media cache (default ~/.cache/cabinet-bot)")
    parser.add_argument("--bind", action="append", default=None, metavar="ADDR",
                        help="host candidate address (repeatable; default 127.0.0.1 for a loopback server)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    parser.add_argument("--no-reconnect", action="store_true",
                        help="do not reconnect after a lost connection (default: reconnect, when logged in)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def _token_source(args: argparse.Namespace, stdin: TextIO) -> TokenSource:
    if args.token:
        return StaticToken(str(args.token))
    if not (args.username and args.meeting is not None and args.password_stdin):
        raise BotError("give --token, or --username with --password-stdin and --meeting")
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise BotError("no password on stdin")
    return LoginTokenSource(args.url, args.username, password, args.meeting, verify_tls=not args.insecure)


async def _token(args: argparse.Namespace, stdin: TextIO) -> str:
    """One join token, from --token or by logging in."""
    source = _token_source(args, stdin)
    try:
        return await source.token()
    finally:
        await source.close()


async def main_async(argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    publish, subscribe = args.publish, args.subscribe
    if not (publish or subscribe):
        publish = subscribe = True
    if args.no_audio and args.no_video and publish:
        parser.error("--no-audio and --no-video leave nothing to publish")
    source: TokenSource | None = None
    try:
        source = _token_source(args, stdin)
        token = await source.token()  # a login refused is a usage error, as before
    except BotError as exc:
        if source is not None:
            await source.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = BotOptions(
        url=args.url,
        token=token,
        token_source=source,
        reconnect=not args.no_reconnect,
        name=args.name,
        publish=publish,
        subscribe=subscribe,
        lean=args.lean,
        decode=args.decode,
        videos=args.videos,
        audios=args.audios,
        audio=not args.no_audio,
        video=not args.no_video,
        speaking=not args.silent,
        media_params=MediaParams(),
        cache_dir=args.cache_dir,
        bind_addresses=args.bind,
        ssl_verify=not args.insecure,
    )
    report = await run_bot(options, args.seconds, progress=args.progress)
    print(report.to_json() if args.json else report.summary(), file=stdout)
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(main_async(argv))
    except KeyboardInterrupt:
        return 130
