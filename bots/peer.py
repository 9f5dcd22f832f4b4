"""Client-side peer connections for bots: no public STUN, optional loopback host candidates."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import aiortc_seams as seams


def ice_servers_from(entries: Iterable[Mapping[str, Any]] | None) -> list[RTCIceServer]:
    """RTCIceServer list from the ``ice_servers`` of a join acknowledgement (browser format)."""
    servers = []
    for entry in entries or ():
        urls = entry.get("urls")
        if not urls:
            continue
        servers.append(RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential")))
    return servers


def new_peer_connection(ice_servers: Sequence[RTCIceServer] = ()) -> RTCPeerConnection:
    """A peer connection with only the given ICE servers (none: no public STUN is contacted)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def configure_host_candidates(pc: RTCPeerConnection, bind_addresses: Sequence[str]) -> None:
    """Restrict/extend host candidates (e.g. ``["127.0.0.1"]`` on loopback); call before gathering
    and again after new transceivers appear. Empty: aioice's default interfaces."""
    if bind_addresses:
        seams.configure_ice(pc, list(bind_addresses), [])


def bind_addresses_for(url: str) -> list[str]:
    """``["127.0.0.1"]`` when the server URL is on loopback (aioice never offers loopback itself)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        return ["127.0.0.1"] if ipaddress.ip_address(host).is_loopback else []
    except ValueError:
        return []
