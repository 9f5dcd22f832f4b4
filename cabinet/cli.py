"""The ``cabinet`` command: serve, database migrations, demo data, accounts, provincial nodes, audit,
recordings, configuration."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cabinet import logs
from cabinet.bootstrap import Runtime, prepare
from cabinet.config import Config, load_config
from cabinet.errors import CabinetError
from cabinet.recordings import bag_info, verify_recordings
from meetings import db as database
from meetings import demo
from meetings.audit_checkpoints import scan, scan_file
from meetings.errors import MeetingsError
from meetings.policy import Caller
from meetings.services import Services
from provincial_nodes.errors import NodeError
from recordings.bagit import validate_bag, write_bag


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line options override every other configuration source."""
    mapping = {
        "data_dir": "server.data_dir", "host": "web.host", "port": "web.port", "tls_cert": "web.tls_cert",
        "tls_key": "web.tls_key", "self_signed": "web.self_signed", "demo_if_empty": "server.demo_if_empty",
        "log_level": "server.log_level", "upstream_url": "provincial_nodes.upstream_url",
        "credential_file": "provincial_nodes.credential_file", "node_office": "provincial_nodes.office_code",
    }
    return {dotted: getattr(args, name) for name, dotted in mapping.items()
            if getattr(args, name, None) not in (None, False)}


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config, cli_overrides=_options(args))
    logs.configure(config.server.log_level, config.server.log_format)
    return config


def _run(args: argparse.Namespace, body: Callable[[Services, Runtime], Awaitable[int]], *,
         migrate: bool | None = None) -> int:
    runtime = prepare(_config(args), migrate=migrate)

    async def main() -> int:
        services = runtime.services()
        try:
            return await body(services, runtime)
        finally:
            await services.db.dispose()

    return asyncio.run(main())


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise CabinetError("the passwords differ")
    return first


# -- serve --------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from cabinet.server import serve

    runtime = prepare(_config(args))
    asyncio.run(serve(runtime))
    return 0


# -- db -----------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    runtime = prepare(_config(args), migrate=False)
    url = runtime.database_url
    if args.db_command == "upgrade":
        database.upgrade(url, args.revision, audit_key=runtime.audit_key)
    elif args.db_command == "downgrade":
        database.downgrade(url, args.revision, audit_key=runtime.audit_key)
    print(f"database revision: {database.current_revision(url) or 'empty'} (latest: {database.head_revision()})")
    return 0


# -- demo ---------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    async def body(services: Services, runtime: Runtime) -> int:
        accounts = await demo.load(services)
        print(f"Loaded {len(demo.OFFICES)} offices and {len(accounts)} demo accounts. Log in with:")
        for account in accounts:
            print(f"  {account.username:<12} ({account.role})  password: {demo.DEMO_PASSWORD}")
        return 0

    return _run(args, body)


# -- users --------------------------------------------------------------------------------------------
def cmd_users(args: argparse.Namespace) -> int:
    caller = Caller.cli()

    async def body(services: Services, runtime: Runtime) -> int:
        if args.users_command == "list":
            for person in await services.people.list(caller):
                roles = ",".join(sorted(r.value for r in person.roles))
                state = "" if person.active else "  [disabled]"
                print(f"{person.username:<20} {person.office.code:<10} {roles:<28} {person.full_name}{state}")
            return 0
        if args.users_command == "create":
            offices = {o.code: o.id for o in await services.offices.list(caller)}
            if args.office.upper() not in offices:
                raise CabinetError(f"no active office with code {args.office!r}")
            person = await services.people.create(
                caller, username=args.username, full_name=args.full_name, office_id=offices[args.office.upper()],
                roles=args.role, password=_read_password(args))
            print(f"created {person.username} ({', '.join(sorted(r.value for r in person.roles))})")
            return 0
        person = await services.people.find(caller, args.username)
        if args.users_command == "set-password":
            await services.people.set_password(caller, person.id, _read_password(args))
            print(f"password set for {person.username}; their sessions were ended")
        elif args.users_command == "set-roles":
            person = await services.people.update(caller, person.id, roles=args.role)
            print(f"{person.username}: {', '.join(sorted(r.value for r in person.roles))}")
        elif args.users_command in ("disable", "enable"):
            await services.people.update(caller, person.id, active=args.users_command == "enable")
            print(f"{person.username} {args.users_command}d")
        return 0

    return _run(args, body)


# -- nodes --------------------------------------------------------------------------------------------
def _when(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def _credential_file(path: str) -> int:
    """Create the file the credential goes to, readable by its owner only; refuse an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CabinetError(f"cannot create {path}: {exc.strerror or exc}") from exc
    os.fchmod(fd, 0o600)
    return fd


def cmd_nodes(args: argparse.Namespace) -> int:
    caller = Caller.cli()

    async def body(services: Services, runtime: Runtime) -> int:
        if args.nodes_command == "list":
            print(f"{'ID':<5} {'OFFICE':<10} {'NAME':<24} {'CREDENTIAL':<16} {'CREATED':<17} {'REVOKED':<17} LAST SEEN")
            for node in await services.nodes.list(caller):
                print(f"{node.id:<5} {node.office.code:<10} {node.name:<24} {node.credential_prefix + '…':<16} "
                      f"{_when(node.created_at):<17} {_when(node.revoked_at):<17} {_when(node.last_seen_at)}")
            return 0
        if args.nodes_command == "revoke":
            node = await services.nodes.revoke(caller, args.node)
            print(f"revoked node {node.id} {node.name!r} of {node.office.code} ({node.credential_prefix}…): "
                  "it is refused from its next connection")
            return 0
        offices = {o.code: o.id for o in await services.offices.list(caller)}
        if args.office.upper() not in offices:
            raise CabinetError(f"no active office with code {args.office!r}")
        fd = _credential_file(args.credential_file) if args.credential_file else None
        try:
            node, credential = await services.nodes.add(caller, office_id=offices[args.office.upper()],
                                                        name=args.name)
        except BaseException:
            if fd is not None:
                os.close(fd)
                os.unlink(args.credential_file)
            raise
        print(f"registered node {node.id} {node.name!r} for {node.office.code} ({node.credential_prefix}…)")
        if fd is None:
            print(f"credential: {credential}")
            print("It will not be shown again: give it to the node now (cabinet node --credential-file FILE).")
        else:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(credential + "\n")
            print(f"credential written to {args.credential_file} (mode 0600); it will not be shown again")
        return 0

    return _run(args, body)


# -- audit --------------------------------------------------------------------------------------------
def cmd_audit(args: argparse.Namespace) -> int:
    caller = Caller.cli()

    async def body(services: Services, runtime: Runtime) -> int:
        if args.audit_command == "verify":
            extra = [c for text in args.checkpoint for c in scan(text, "--checkpoint")]
            for path in args.checkpoints:
                try:
                    extra.extend(scan_file(Path(path)))
                except OSError as exc:
                    raise CabinetError(f"cannot read {path}: {exc.strerror or exc}") from exc
            result = await services.audit.verify(caller, extra)
            if result.ok:
                print(f"audit chain intact: {result.checked} events; head #{result.head_seq} {result.head_hash}; "
                      f"held against {result.checkpoints} signed checkpoints (the latest names row "
                      f"#{result.checkpoint_seq})")
                if not result.checkpoints and result.checked:
                    print("warning: no signed checkpoint found (checkpoint file, approved minutes, --checkpoints): "
                          "rows removed from the end would not be noticed")
                return 0
            print(f"audit chain BROKEN at event #{result.broken_seq}: {result.problem} "
                  f"({result.checked} events verified before it)")
            return 1
        if args.audit_command == "checkpoint":
            print((await services.audit.checkpoint(caller)).text())
            return 0
        for event in reversed(await services.audit.recent(caller, limit=args.lines)):
            print(f"#{event.seq:<6} {event.created_at:%Y-%m-%d %H:%M:%S} {event.action:<26} actor={event.actor_id} "
                  f"from={event.address} {event.target_type}:{event.target_id} {event.details}")
        return 0

    return _run(args, body)


# -- recordings ---------------------------------------------------------------------------------------
def cmd_recordings(args: argparse.Namespace) -> int:
    async def body(services: Services, runtime: Runtime) -> int:
        root = runtime.config.archive_path
        if args.recordings_command == "verify":
            problems = await verify_recordings(services, root, args.meeting)
            for problem in problems:
                print(problem)
            sealed = await services.recordings.sealed(Caller.cli(), args.meeting)
            if problems:
                print(f"{len(problems)} problem(s) in {len(sealed)} sealed recording(s)")
                return 1
            print(f"{len(sealed)} sealed recording(s) intact: every file matches its manifest, every manifest "
                  "its seal")
            return 0
        recording = await services.recordings.get(Caller.cli(), args.recording)
        if recording.manifest_sha256 is None:
            raise CabinetError(f"recording {recording.id} is not sealed yet ({recording.state.value})")
        out = Path(args.output)
        bag = await asyncio.to_thread(write_bag, root / recording.key, out, name=f"cabinet-recording-{recording.id}",
                                      info=bag_info(recording))
        problems = await asyncio.to_thread(validate_bag, bag)
        if problems:
            raise CabinetError("the bag does not validate: " + "; ".join(problems))
        print(f"wrote {bag} (BagIt 1.0, SHA-256 manifests)")
        return 0

    return _run(args, body)


# -- config -------------------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    config = load_config(args.config, cli_overrides=_options(args))
    if args.config_command == "show":
        print(json.dumps(config.redacted(), indent=2))
    else:
        print("configuration is valid")
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (or CABINET_CONFIG)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (database, secret, recordings)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _add_listening(parser: argparse.ArgumentParser) -> None:
    """Where a server (the centre or a node) listens, and its TLS."""
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--tls-cert", metavar="PEM", help="TLS certificate (with --tls-key)")
    parser.add_argument("--tls-key", metavar="PEM", help="TLS private key")
    parser.add_argument("--self-signed", action="store_true",
                        help="serve HTTPS with a self-signed certificate generated in the data directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cabinet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    _add_common(serve)
    _add_listening(serve)
    serve.add_argument("--demo-if-empty", action="store_true", help="load demo data if the database is empty")
    serve.set_defaults(func=cmd_serve)

    node = sub.add_parser("node", help="run the server as an office's provincial node, linked to the centre")
    _add_common(node)
    node.add_argument("--upstream", dest="upstream_url", metavar="URL", required=True,
                      help="the central server, e.g. https://cabinet.example.gov")
    node.add_argument("--credential-file", metavar="FILE", required=True,
                      help="the node's credential (from `cabinet nodes add --credential-file` on the centre; mode 600)")
    node.add_argument("--office", dest="node_office", metavar="CODE", required=True,
                      help="the office this node serves (its code, e.g. KH-17)")
    _add_listening(node)
    node.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, help_text in (("upgrade", "apply migrations"), ("downgrade", "revert migrations"),
                            ("current", "show the current revision")):
        p = db_sub.add_parser(name, help=help_text)
        _add_common(p)
        if name != "current":
            p.add_argument("revision", nargs="?" if name == "upgrade" else None, default="head")
    db.set_defaults(func=cmd_db)

    demo_parser = sub.add_parser("demo", help="demo data")
    demo_sub = demo_parser.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    _add_common(demo_sub.add_parser("load", help="load offices, demo accounts and meetings into an empty database"))
    demo_parser.set_defaults(func=cmd_demo)

    users = sub.add_parser("users", help="accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    _add_common(users_sub.add_parser("list", help="list accounts"))
    create = users_sub.add_parser("create", help="create an account (asks for the password)")
    _add_common(create)
    create.add_argument("username")
    create.add_argument("--full-name", required=True)
    create.add_argument("--office", required=True, metavar="CODE", help="office code, e.g. OCM or KH-17")
    create.add_argument("--role", action="append", required=True,
                        choices=["secretariat", "chair", "delegate", "commander", "observer"])
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    setpw = users_sub.add_parser("set-password", help="set an account's password and end its sessions")
    _add_common(setpw)
    setpw.add_argument("username")
    setpw.add_argument("--password-stdin", action="store_true")
    roles = users_sub.add_parser("set-roles", help="replace an account's roles")
    _add_common(roles)
    roles.add_argument("username")
    roles.add_argument("--role", action="append", required=True,
                       choices=["secretariat", "chair", "delegate", "commander", "observer"])
    for name in ("disable", "enable"):
        p = users_sub.add_parser(name, help=f"{name} an account")
        _add_common(p)
        p.add_argument("username")
    users.set_defaults(func=cmd_users)

    nodes = sub.add_parser("nodes", help="the offices' provincial nodes and their credentials")
    nodes_sub = nodes.add_subparsers(dest="nodes_command", required=True, metavar="ACTION")
    add = nodes_sub.add_parser("add", help="register a node for an office; its credential is shown once")
    _add_common(add)
    add.add_argument("--office", required=True, metavar="CODE", help="office code, e.g. KH-10 or MR4")
    add.add_argument("--name", required=True, help="the node's name, unique among the office's active nodes")
    add.add_argument("--credential-file", metavar="PATH",
                     help="write the credential to PATH (created, mode 0600) instead of printing it")
    _add_common(nodes_sub.add_parser("list", help="list nodes, revoked ones included"))
    revoke = nodes_sub.add_parser("revoke", help="revoke a node's credential")
    _add_common(revoke)
    revoke.add_argument("node", type=int, metavar="ID")
    nodes.set_defaults(func=cmd_nodes)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check the keyed hash chain and its signed checkpoints; "
                                                 "report the first broken link")
    _add_common(verify)
    verify.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                        help="also hold the chain against the checkpoints in FILE (a log, saved minutes); repeatable")
    verify.add_argument("--checkpoint", action="append", default=[], metavar="LINE",
                        help="a checkpoint line copied from elsewhere (printed minutes); repeatable")
    _add_common(audit_sub.add_parser("checkpoint", help="print a signed checkpoint of the chain's head, to keep "
                                                       "somewhere the database's owner cannot write"))
    tail = audit_sub.add_parser("tail", help="show the latest events")
    _add_common(tail)
    tail.add_argument("-n", "--lines", type=int, default=20)
    audit.set_defaults(func=cmd_audit)

    recordings = sub.add_parser("recordings", help="the recording archive")
    recordings_sub = recordings.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")
    check = recordings_sub.add_parser("verify", help="check every sealed recording's files against its manifest "
                                                     "and each manifest against its seal; name what differs")
    _add_common(check)
    check.add_argument("meeting", nargs="?", type=int, help="only this meeting's recordings")
    bag = recordings_sub.add_parser("bag", help="write a recording as a BagIt package (tar) for a national archive")
    _add_common(bag)
    bag.add_argument("recording", type=int)
    bag.add_argument("output", help="the .tar file to create")
    recordings.set_defaults(func=cmd_recordings)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    _add_common(config_sub.add_parser("show", help="print the effective configuration, secrets masked"))
    _add_common(config_sub.add_parser("check", help="validate the configuration"))
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CabinetError as exc:
        print(f"cabinet: {exc}", file=sys.stderr)
        return 2
    except MeetingsError as exc:
        print(f"cabinet: {exc.message}", file=sys.stderr)
        return 1
    except NodeError as exc:
        print(f"cabinet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
