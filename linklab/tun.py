"""TUN devices: open /dev/net/tun and attach a layer-3 device (IFF_TUN | IFF_NO_PI) to the descriptor."""

from __future__ import annotations

import fcntl
import os
import struct

from .errors import LabSetupError

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
TUN_PATH = "/dev/net/tun"


def tun_available() -> bool:
    return os.path.exists(TUN_PATH) and os.access(TUN_PATH, os.R_OK | os.W_OK)


def open_tun(name: str) -> int:
    """A non-blocking descriptor for a new TUN device ``name``; the device lives as long as the descriptor."""
    encoded = name.encode()
    if not encoded or len(encoded) >= IFNAMSIZ:
        raise LabSetupError(f"interface name {name!r} must be 1-{IFNAMSIZ - 1} bytes")
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise LabSetupError(f"cannot open {TUN_PATH}: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", encoded, IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise LabSetupError(f"cannot create TUN device {name}: {exc.strerror}") from None
    return fd
