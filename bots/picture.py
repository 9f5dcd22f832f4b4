"""The bot's test picture (YUV 4:2:0, drawn without numpy) and its frame-index bar code.

Each picture shows the flag-like blue/red/blue bands, a scrolling texture, a bouncing white ball and,
along the top edge, a bar code row of :data:`CELLS` cells: a white guard, 12 bits of the frame's
index in the loop (most significant first), a parity cell and its inverse, and a black guard. A
decoded frame therefore tells which loop frame it is (:func:`read_index`), so a receiver can check
that what it decodes is what was sent.
"""

from __future__ import annotations

import math
import random

from av import VideoFrame

CELLS = 16
INDEX_BITS = 12
MAX_INDEX = (1 << INDEX_BITS) - 1
BLACK, WHITE = 16, 235


def _bits(index: int) -> list[int]:
    value = [(index >> (INDEX_BITS - 1 - i)) & 1 for i in range(INDEX_BITS)]
    parity = sum(value) & 1
    return [1, *value, parity, 1 - parity, 0]


def bar_height(height: int) -> int:
    return max(8, (height // 15) & ~1)


class PictureMaker:
    """Draws frame ``i`` of the loop; deterministic for given dimensions."""

    def __init__(self, width: int, height: int, frames: int) -> None:
        if width % 16 or height % 2 or width < 64 or height < 48:
            raise ValueError("width must be a multiple of 16 and >= 64, height even and >= 48")
        if frames - 1 > MAX_INDEX:
            raise ValueError(f"at most {MAX_INDEX + 1} frames per loop")
        self.width, self.height, self.frames = width, height, frames
        rng = random.Random(20091224)
        # A texture twice as wide as the picture, scrolled one step per frame.
        self._texture = [
            bytes(60 + rng.randrange(0, 40) + (40 if (x // 24 + y // 24) % 2 else 0) for x in range(2 * width))
            for y in range(0, height, 4)
        ]
        band = height // 3
        # Blue, red, blue bands (U/V offsets), as on the flag of Cambodia.
        self._u_rows = [128 + (-30 if band <= y < 2 * band else 70) for y in range(height)]
        self._v_rows = [128 + (90 if band <= y < 2 * band else -25) for y in range(height)]

    def draw(self, index: int, frame: VideoFrame) -> None:
        """Fill ``frame`` (yuv420p, our dimensions) with picture ``index``."""
        w, h = self.width, self.height
        y_plane, u_plane, v_plane = frame.planes
        stride = y_plane.line_size
        luma = bytearray(y_plane.buffer_size)
        shift = (index * 6) % w
        for y in range(h):
            row = self._texture[y // 4]
            start = y * stride
            luma[start : start + w] = row[shift : shift + w]
        # Bouncing ball.
        t = index / max(1, self.frames)
        radius = max(6, h // 10)
        cx = int(radius + (w - 2 * radius) * (0.5 - 0.5 * math.cos(2 * math.pi * t)))
        cy = int(h * 0.6 + (h * 0.25) * math.sin(4 * math.pi * t))
        ball: dict[int, tuple[int, int]] = {}
        for dy in range(-radius, radius + 1):
            y = cy + dy
            if 0 <= y < h:
                half = int(math.sqrt(radius * radius - dy * dy))
                x0, x1 = max(0, cx - half), min(w, cx + half)
                luma[y * stride + x0 : y * stride + x1] = bytes([WHITE]) * (x1 - x0)
                ball[y // 2] = (x0 // 2, x1 // 2)
        # Bar code row.
        cell = w // CELLS
        bar = bar_height(h)
        for c, bit in enumerate(_bits(index)):
            value = bytes([WHITE if bit else BLACK]) * cell
            for y in range(bar):
                luma[y * stride + c * cell : y * stride + (c + 1) * cell] = value
        y_plane.update(bytes(luma))
        for plane, rows in ((u_plane, self._u_rows), (v_plane, self._v_rows)):
            cstride = plane.line_size
            chroma = bytearray(plane.buffer_size)
            for y in range(h // 2):
                value = 128 if y < bar // 2 else rows[2 * y]
                chroma[y * cstride : y * cstride + w // 2] = bytes([value]) * (w // 2)
                if y in ball:
                    x0, x1 = ball[y]
                    chroma[y * cstride + x0 : y * cstride + x1] = bytes([128]) * (x1 - x0)
            plane.update(bytes(chroma))


def read_index(frame: VideoFrame) -> int | None:
    """The loop index a decoded frame shows, or None when its bar code is unreadable."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    w, h = frame.width, frame.height
    plane = frame.planes[0]
    stride = plane.line_size
    data = bytes(plane)
    cell = w // CELLS
    bar = bar_height(h)
    bits = []
    for c in range(CELLS):
        total = count = 0
        for y in range(bar // 4, bar - bar // 4):
            row = y * stride + c * cell
            for x in range(cell // 4, cell - cell // 4, 2):
                total += data[row + x]
                count += 1
        bits.append(1 if total / count > 128 else 0)
    if bits[0] != 1 or bits[-1] != 0 or bits[-2] == bits[-3]:
        return None
    value_bits = bits[1 : 1 + INDEX_BITS]
    if sum(value_bits) & 1 != bits[-3]:
        return None
    index = 0
    for bit in value_bits:
        index = (index << 1) | bit
    return index
