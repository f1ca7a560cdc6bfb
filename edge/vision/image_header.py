"""What an image file says about itself before anyone decodes it.

A decoder allocates what the header asks for: a 1 MB PNG that declares 20000 x 20000
pixels costs 2.5 GB and half a minute. So the header is read first, by this module,
and the caller refuses sizes it cannot afford. It also tells whether the file is
complete (libjpeg decodes a truncated JPEG with a grey bottom and only a warning on
stderr) and whether it can hold transparency. Only the formats facegate accepts are
understood: JPEG, PNG, WebP and BMP; a smaller decoder surface is a smaller attack
surface.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ImageError

FORMATS = ("JPEG", "PNG", "WebP", "BMP")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (every coding process; not DHT C4, JPG C8 or DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    alpha: bool  # the file can hold an alpha channel
    complete: bool  # the data runs to the format's end marker

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> ImageHeader:
    """The header of a JPEG, PNG, WebP or BMP file's bytes; ImageError for anything else."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    raise ImageError(f"not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image")


def _jpeg(data: bytes) -> ImageHeader:
    size = None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:  # stray bytes between segments: decoders skip them too
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            size = (width, height)
        if marker == _SOS:
            if size is None:
                raise ImageError("JPEG without a frame header")
            # Entropy-coded data follows; 0xFF 0xD9 cannot occur inside it (0xFF bytes
            # there are stuffed), so a file cut short has no end marker after it.
            complete = data.rfind(bytes((0xFF, _EOI))) > pos
            return ImageHeader("JPEG", *size, alpha=False, complete=complete)
        pos += 2 + length
    raise ImageError("JPEG ends before its image data")


def _png(data: bytes) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("PNG without its IHDR header")
    width, height, _, colour = struct.unpack(">IIBB", data[16:26])
    alpha = colour in (4, 6)  # grey + alpha, RGBA
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"tRNS":  # transparency for palette, grey or RGB images
            alpha = True
        end = pos + 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            return ImageHeader("PNG", width, height, alpha, complete=end <= len(data))
        pos = end
    return ImageHeader("PNG", width, height, alpha, complete=False)


def _webp(data: bytes) -> ImageHeader:
    if len(data) < 30:
        raise ImageError("WebP without its header")
    (riff_size,) = struct.unpack("<I", data[4:8])
    complete = 8 + riff_size <= len(data)
    kind = data[12:16]
    if kind == b"VP8X":  # extended: canvas size minus one, 24 bits each, and flags
        alpha = bool(data[20] & 0x10)
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif kind == b"VP8L":  # lossless: 14 bits each of size minus one, then alpha
        (bits,) = struct.unpack("<I", data[21:25])
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        alpha = bool(bits >> 28 & 1)
    elif kind == b"VP8 ":  # lossy: 14 bits each, after the frame tag and start code
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", data[26:30]))
        alpha = False
    else:
        raise ImageError(f"WebP with an unknown first chunk {kind!r}")
    return ImageHeader("WebP", width, height, alpha, complete)


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 34:
        raise ImageError("BMP without its header")
    (offset,) = struct.unpack("<I", data[10:14])
    width, height, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
    width, height = abs(width), abs(height)  # a negative height means top-down rows
    complete = True
    if compression == 0:  # uncompressed: the size of the pixel data is known
        row = (bits * width + 31) // 32 * 4
        complete = offset + row * height <= len(data)
    return ImageHeader("BMP", width, height, alpha=bits == 32, complete=complete)
