"""Write feedsvc/static/favicon.ico: the feed icon (an orange square, a dot and two arcs) at 16 and 32 px.

Drawn here, with no image library, so the icon's source is this file: `python tools/make_favicon.py`.
Each size is a PNG inside the ICO container, which every current browser reads.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "feedsvc" / "static" / "favicon.ico"
ORANGE, WHITE = (0xE8, 0x6A, 0x10), (0xFF, 0xFF, 0xFF)
SAMPLES = 4  # per axis: anti-aliased edges


def shape(x: float, y: float) -> str | None:
    """What covers the point (x, y) of a unit square, origin top-left: "white", "orange" or nothing."""
    r = 0.18  # corner radius of the square
    cx, cy = min(max(x, r), 1 - r), min(max(y, r), 1 - r)
    if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
        return None
    # The dot and the arcs are centred on the bottom-left corner of the inner area.
    ox, oy = 0.22, 0.78
    d = ((x - ox) ** 2 + (y - oy) ** 2) ** 0.5
    if d <= 0.09 or (x >= ox and y <= oy and (0.28 <= d <= 0.40 or 0.52 <= d <= 0.64)):
        return "white"
    return "orange"


def pixels(size: int) -> bytes:
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter: none
        for px in range(size):
            hits = {"white": 0, "orange": 0}
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    found = shape((px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size)
                    if found:
                        hits[found] += 1
            covered = hits["white"] + hits["orange"]
            if not covered:
                rows += bytes(4)
                continue
            colour = [(w * hits["white"] + o * hits["orange"]) // covered for w, o in zip(WHITE, ORANGE)]
            rows += bytes(colour) + bytes([255 * covered // SAMPLES ** 2])
    return bytes(rows)


def png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels(size), 9)) + chunk(b"IEND", b"")


def ico(sizes: tuple[int, ...]) -> bytes:
    images = [png(size) for size in sizes]
    out = struct.pack("<HHH", 0, 1, len(images))  # reserved, type 1 = icon, count
    offset = 6 + 16 * len(images)
    for size, image in zip(sizes, images):
        out += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return out + b"".join(images)


if __name__ == "__main__":
    OUT.write_bytes(ico((16, 32)))
    print(f"{OUT}: {OUT.stat().st_size} bytes")
