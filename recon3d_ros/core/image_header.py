"""Size and completeness of a JPEG / PNG / TIFF payload, read from its header before decoding.

A decoder allocates the full image the header declares before it reads any pixel data, so a
few kilobytes can claim 16000 x 16000 pixels (768 MB of BGR) and the damage is done before a
size check on the decoded array can run. :func:`inspect_image` reads only the container
structure (JPEG markers up to the first scan, the PNG chunk list, the first TIFF directory),
which costs microseconds, and reports:

* the declared ``width`` x ``height``, so a caller rejects an oversized image first;
* whether the payload is complete: a JPEG must end its scan with an EOI marker and a PNG's
  chunk list must reach ``IEND``. A truncated payload is rejected here with a reason rather
  than handed to a decoder that would print its own complaint to stderr (libpng) or return a
  half-grey image (libjpeg).

Anything that is not JPEG, PNG or TIFF is refused: those are the formats ROS's image_transport
(``compressed``) and compressed_depth_image_transport publish.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from recon3d_ros.errors import EncodingError

__all__ = ["ImageHeader", "inspect_image"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and RST0..RST7 (SOI/EOI are handled on their own).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_TIFF_ORDERS = {b"II*\x00": "<", b"MM\x00*": ">"}
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
_TIFF_SHORT, _TIFF_LONG = 3, 4


@dataclass(frozen=True)
class ImageHeader:
    """What a compressed payload says about itself."""

    format: str  # noqa: A003 - "jpeg", "png" or "tiff"
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def inspect_image(data: bytes) -> ImageHeader:
    """Read the format and declared size of a JPEG/PNG/TIFF payload without decoding it.

    Raises
    ------
    EncodingError
        not a JPEG/PNG/TIFF, a header that is cut short or inconsistent, a zero size, or
        (JPEG, PNG) a payload truncated before its end marker.

    """
    if data.startswith(_JPEG_SOI):
        return _jpeg(data)
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    order = _TIFF_ORDERS.get(data[:4])
    if order is not None:
        return _tiff(data, order)
    raise EncodingError(
        f"compressed payload starting with {data[:8].hex(' ')} is not a JPEG, PNG or TIFF "
        "image; publish jpeg or png (image_transport 'compressed')"
    )


def _sized(fmt: str, width: int, height: int) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise EncodingError(f"{fmt} header declares an empty image ({width}x{height})")
    return ImageHeader(fmt, width, height)


def _jpeg(data: bytes) -> ImageHeader:
    """Walk the marker segments after SOI up to the first scan (SOS)."""
    n = len(data)
    i = 2
    size: tuple[int, int] | None = None
    while True:
        # libjpeg skips stray bytes before a marker (with a warning); so do we.
        start = data.find(b"\xff", i)
        if start < 0:
            raise EncodingError("jpeg is truncated: it ends before its first scan (no SOS marker)")
        i = start
        while i < n and data[i] == 0xFF:  # any number of fill bytes may precede a marker
            i += 1
        if i >= n:
            raise EncodingError("jpeg is truncated: it ends inside a marker")
        marker = data[i]
        i += 1
        if marker == 0x00 or marker in _JPEG_STANDALONE or marker == 0xD8:
            continue
        if marker == 0xD9:
            raise EncodingError("jpeg has no image: end-of-image marker before any scan")
        if i + 2 > n:
            raise EncodingError(f"jpeg is truncated: it ends inside marker 0x{marker:02x}")
        length = struct.unpack_from(">H", data, i)[0]
        if length < 2 or i + length > n:
            raise EncodingError(
                f"jpeg is truncated or corrupt: marker 0x{marker:02x} declares {length} bytes "
                f"but {n - i} remain"
            )
        if marker in _JPEG_SOF:
            if length < 8:
                raise EncodingError(f"jpeg frame header (SOF) is {length} bytes, too short")
            height, width = struct.unpack_from(">HH", data, i + 3)
            if height == 0:
                raise EncodingError(
                    "jpeg frame header declares height 0 (set later by a DNL marker), which "
                    "the decoder does not support"
                )
            size = (width, height)
        elif marker == 0xDA:  # SOS: entropy-coded data follows
            if size is None:
                raise EncodingError("jpeg is corrupt: scan data (SOS) before any frame header")
            # Entropy-coded data cannot contain FF D9 (an FF data byte is stuffed as FF 00), so
            # an EOI after the scan header is the file's end; bytes after it are ignored.
            if data.rfind(_JPEG_EOI, i + length) < 0:
                raise EncodingError(
                    "jpeg is truncated: no end-of-image (EOI) marker after the scan data"
                )
            return _sized("jpeg", *size)
        i += length


def _png(data: bytes) -> ImageHeader:
    """Read IHDR, then walk the chunk list (length, type, data, CRC) to IEND."""
    i = len(_PNG_SIGNATURE)
    if len(data) < i + 8 + 13 or data[i + 4:i + 8] != b"IHDR":
        raise EncodingError("png is corrupt or truncated: no IHDR chunk after the signature")
    (ihdr_length,) = struct.unpack_from(">I", data, i)
    if ihdr_length != 13:
        raise EncodingError(f"png IHDR chunk is {ihdr_length} bytes, not 13: corrupt header")
    width, height = struct.unpack_from(">II", data, i + 8)
    n = len(data)
    while True:
        if i + 8 > n:
            raise EncodingError(f"png is truncated: {n} bytes end before the IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, i)
        end = i + 12 + length
        if end > n:
            name = kind.decode("latin-1")
            raise EncodingError(
                f"png is truncated: chunk {name!r} at byte {i} needs {12 + length} bytes but "
                f"the payload ends after {n - i}"
            )
        if kind == b"IEND":
            return _sized("png", width, height)
        i = end


def _tiff(data: bytes, order: str) -> ImageHeader:
    """Read ImageWidth / ImageLength from the first image file directory (classic TIFF)."""
    n = len(data)
    if n < 8:
        raise EncodingError("tiff is truncated: no directory offset")
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > n:
        raise EncodingError(f"tiff is truncated: first directory at byte {ifd} of {n}")
    (count,) = struct.unpack_from(order + "H", data, ifd)
    if ifd + 2 + 12 * count > n:
        raise EncodingError(f"tiff is truncated: its first directory needs {12 * count} bytes")
    found: dict[int, int] = {}
    for entry in range(count):
        tag, kind, _ = struct.unpack_from(order + "HHI", data, ifd + 2 + 12 * entry)
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH) and kind in (_TIFF_SHORT, _TIFF_LONG):
            fmt = order + ("H" if kind == _TIFF_SHORT else "I")
            found[tag] = struct.unpack_from(fmt, data, ifd + 2 + 12 * entry + 8)[0]
    if len(found) != 2:
        raise EncodingError("tiff is corrupt: its first directory has no ImageWidth/ImageLength")
    return _sized("tiff", found[_TIFF_WIDTH], found[_TIFF_LENGTH])
