"""Tests for recon3d_ros.core.image_header: sizes and completeness read without decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon3d_ros.core.image_header import inspect_image
from recon3d_ros.errors import EncodingError


def _noise(h: int, w: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    info = np.iinfo(dtype)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return np.random.default_rng(1).integers(0, info.max, shape, dtype=dtype, endpoint=True)


def _encode(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    "ext, image, params, fmt",
    [
        (".jpg", _noise(37, 53), (), "jpeg"),
        (".jpg", _noise(40, 61), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "jpeg"),
        (".jpg", _noise(17, 9, 1), (), "jpeg"),
        (".png", _noise(37, 53), (), "png"),
        (".png", _noise(21, 30, 1, np.uint16), (), "png"),
        (".png", _noise(5, 7, 4), (), "png"),
        (".tiff", _noise(19, 23), (), "tiff"),
    ],
)
def test_declared_size_is_the_encoded_image_size(ext, image, params, fmt) -> None:
    header = inspect_image(_encode(ext, image, *params))
    assert (header.format, header.width, header.height) == (fmt, image.shape[1], image.shape[0])
    assert header.pixels == image.shape[0] * image.shape[1]


def test_jpeg_size_skips_an_embedded_thumbnail() -> None:
    # An EXIF-style APP1 segment carrying a whole 8x8 jpeg (with its own SOF and EOI) before
    # the main image's frame header: the main image's size is the one that counts.
    main = _encode(".jpg", _noise(30, 44))
    thumb = _encode(".jpg", _noise(8, 8))
    app1 = b"\xff\xe1" + (2 + len(thumb)).to_bytes(2, "big") + thumb
    header = inspect_image(main[:2] + app1 + main[2:])
    assert (header.width, header.height) == (44, 30)


def test_bombs_report_the_declared_size(bad_payloads) -> None:
    jpeg = bad_payloads.jpeg_bomb()
    png = bad_payloads.png_bomb()
    assert len(jpeg) < 10_000 and len(png) < 1_000_000
    assert (inspect_image(jpeg).width, inspect_image(jpeg).height) == (16000, 16000)
    assert (inspect_image(png).format, inspect_image(png).pixels) == ("png", 16000 * 16000)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_every_truncation_is_rejected(ext: str) -> None:
    data = _encode(ext, _noise(24, 32))
    inspect_image(data)
    for cut in list(range(1, len(data) - 1, 97)) + [len(data) - 1]:
        with pytest.raises(EncodingError, match="truncated|corrupt|not a JPEG"):
            inspect_image(data[:cut])


def test_trailing_bytes_after_the_end_marker_are_accepted() -> None:
    # Some MJPEG webcams pad frames after EOI; libjpeg stops at EOI and so does the check.
    data = _encode(".jpg", _noise(24, 32))
    assert inspect_image(data + bytes(64)).width == 32


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"GIF89a\x01\x00\x01\x00", "not a JPEG, PNG or TIFF"),
        (b"\xff\xd8\xff\xd9", "end-of-image marker before any scan"),
        (b"\xff\xd8\xff\xda\x00\x08" + bytes(6) + b"\xff\xd9", "before any frame header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IDAT", "no IHDR"),
    ],
)
def test_malformed_headers_are_named(payload: bytes, reason: str) -> None:
    with pytest.raises(EncodingError, match=reason):
        inspect_image(payload)


def test_zero_height_jpeg_is_rejected(bad_payloads) -> None:
    with pytest.raises(EncodingError, match="height 0"):
        inspect_image(bad_payloads.jpeg_bomb(width=64, height=0))
