"""Tests for recon3d_ros.core.encodings (sensor_msgs/Image buffers <-> numpy)."""

from __future__ import annotations

import array
import struct

import cv2
import numpy as np
import pytest

from recon3d_ros.core.encodings import (
    SUPPORTED_ENCODINGS,
    ImageFields,
    array_to_image_fields,
    bytes_per_pixel,
    channels,
    decode_compressed,
    depth_m_to_mm16,
    image_to_array,
    to_depth_m,
    to_rgb8,
)
from recon3d_ros.errors import EncodingError


def _padded_rows(rows: list[bytes], step: int, pad_byte: int = 0xEE) -> bytes:
    return b"".join(r + bytes([pad_byte]) * (step - len(r)) for r in rows)


# ---------------------------------------------------------------- image_to_array


def test_rgb8_with_row_padding_is_a_strided_view_without_copy() -> None:
    # 2x3 rgb8 image, each row padded from 6 to 8 bytes.
    pixels = [[(1, 2, 3), (4, 5, 6)], [(7, 8, 9), (10, 11, 12)], [(13, 14, 15), (16, 17, 18)]]
    rows = [bytes(v for px in row for v in px) for row in pixels]
    data = bytearray(_padded_rows(rows, 8))
    arr = image_to_array(data, "rgb8", width=2, height=3, step=8, is_bigendian=False)
    assert arr.shape == (3, 2, 3)
    assert arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, np.array(pixels, dtype=np.uint8))
    assert np.shares_memory(arr, np.frombuffer(data, dtype=np.uint8))
    data[8] = 99  # first byte of row 1 is pixel (1, 0) red
    assert arr[1, 0, 0] == 99


def test_mono16_big_endian_is_byte_swapped_to_native() -> None:
    values = [[1, 258, 65535], [4096, 0, 513]]
    # Hand-built big-endian rows, step 8 (6 bytes of data + 2 padding).
    rows = [struct.pack(">3H", *row) for row in values]
    arr = image_to_array(_padded_rows(rows, 8), "mono16", 3, 2, 8, is_bigendian=True)
    assert arr.shape == (2, 3)
    assert arr.dtype == np.dtype(np.uint16)
    assert arr.dtype.isnative
    np.testing.assert_array_equal(arr, np.array(values, dtype=np.uint16))


def test_32fc1_little_and_big_endian_agree() -> None:
    depth = np.array([[0.5, 1.25], [np.nan, 7.0]], dtype=np.float32)
    little = depth.astype("<f4").tobytes()
    big = depth.astype(">f4").tobytes()
    a = image_to_array(little, "32FC1", 2, 2, 8, False)
    b = image_to_array(big, "32FC1", 2, 2, 8, True)
    np.testing.assert_array_equal(a, depth)
    np.testing.assert_array_equal(b, depth)
    assert b.dtype == np.float32 and b.dtype.isnative


def test_32fc1_with_unaligned_odd_step() -> None:
    # A step that is not a multiple of 4 leaves the floats of row 1 unaligned.
    values = [[1.5, -2.0, 3.25], [4.0, np.nan, 0.125]]
    rows = [struct.pack("<3f", *row) for row in values]
    arr = image_to_array(_padded_rows(rows, 13), "32FC1", 3, 2, 13, False)
    np.testing.assert_array_equal(arr, np.array(values, np.float32))
    rows_be = [struct.pack(">3f", *row) for row in values]
    arr_be = image_to_array(_padded_rows(rows_be, 13), "32FC1", 3, 2, 13, True)
    np.testing.assert_array_equal(arr_be, np.array(values, np.float32))


def test_64fc1_and_16sc1_values() -> None:
    d64 = np.array([[1.5, -2.25, 3.0]], dtype=np.float64)
    np.testing.assert_array_equal(image_to_array(d64.tobytes(), "64FC1", 3, 1, 24, False), d64)
    raw = struct.pack(">3h", -1, 300, -32768)
    np.testing.assert_array_equal(
        image_to_array(raw, "16SC1", 3, 1, 6, True), np.array([[-1, 300, -32768]], np.int16)
    )


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "ndarray"])
def test_accepts_every_buffer_type_a_ros_message_may_hold(kind: str) -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    raw = img.tobytes()
    data = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "array": array.array("B", raw),
        "ndarray": np.frombuffer(raw, dtype=np.uint8),
    }[kind]
    np.testing.assert_array_equal(image_to_array(data, "bgr8", 3, 2, 9, False), img)


def test_yuv_and_bayer_shapes() -> None:
    uyvy = image_to_array(bytes(4 * 2 * 2), "yuv422", 4, 2, 8, False)
    assert uyvy.shape == (2, 4, 2)
    bayer = image_to_array(bytes(4 * 2), "bayer_rggb8", 4, 2, 4, False)
    assert bayer.shape == (2, 4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"encoding": "rgb9"}, "encoding"),
        ({"width": 0}, "width"),
        ({"height": 0}, "height"),
        ({"step": 5}, "step"),
        ({"data": bytes(11)}, "step*height"),
        ({"width": 20_000, "height": 10_000, "step": 60_000}, "exceeds"),
    ],
)
def test_invalid_fields_raise_encoding_error_naming_the_field(kwargs: dict, field: str) -> None:
    args = {"data": bytes(12), "encoding": "rgb8", "width": 2, "height": 2, "step": 6,
            "is_bigendian": False}
    args.update(kwargs)
    with pytest.raises(EncodingError, match=field.replace("*", r"\*")):
        image_to_array(**args)


def test_helpers() -> None:
    assert bytes_per_pixel("rgb8") == 3
    assert bytes_per_pixel("32FC1") == 4
    assert bytes_per_pixel("yuv422") == 2
    assert bytes_per_pixel("16UC3") == 6
    assert channels("bgra8") == 4
    assert channels("bayer_gbrg8") == 1
    assert {"rgb8", "mono16", "uyvy", "yuyv", "yuv422_yuy2", "64FC1"} <= SUPPORTED_ENCODINGS
    with pytest.raises(EncodingError, match="unsupported"):
        channels("jpeg")


# ---------------------------------------------------------------- to_rgb8


@pytest.fixture(name="rgb")
def _rgb() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def test_to_rgb8_from_channel_orders(rgb: np.ndarray) -> None:
    bgr = rgb[..., ::-1]
    np.testing.assert_array_equal(to_rgb8(rgb, "rgb8"), rgb)
    np.testing.assert_array_equal(to_rgb8(np.ascontiguousarray(bgr), "bgr8"), rgb)
    np.testing.assert_array_equal(to_rgb8(np.ascontiguousarray(bgr), "8UC3"), rgb)
    alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
    np.testing.assert_array_equal(to_rgb8(np.concatenate([rgb, alpha], 2), "rgba8"), rgb)
    np.testing.assert_array_equal(to_rgb8(np.concatenate([bgr, alpha], 2), "bgra8"), rgb)


def test_to_rgb8_from_mono(rgb: np.ndarray) -> None:
    mono = rgb[..., 0]
    out = to_rgb8(mono, "mono8")
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], mono)
    mono16 = mono.astype(np.uint16) * 256 + 255  # low byte must be dropped
    np.testing.assert_array_equal(to_rgb8(mono16, "mono16")[..., 1], mono)


def test_to_rgb8_from_padded_bgr_message(rgb: np.ndarray) -> None:
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    rows = [bgr[r].tobytes() for r in range(bgr.shape[0])]
    arr = image_to_array(_padded_rows(rows, 32), "bgr8", 8, 6, 32, False)
    out = to_rgb8(arr, "bgr8")
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.c_contiguous


def test_to_rgb8_from_16_bit_colour_and_bayer(rgb: np.ndarray) -> None:
    rgb16 = rgb.astype(np.uint16) * 257  # 0xABAB: the high byte is the 8-bit value
    np.testing.assert_array_equal(to_rgb8(rgb16, "rgb16"), rgb)
    np.testing.assert_array_equal(to_rgb8(np.ascontiguousarray(rgb16[..., ::-1]), "bgr16"), rgb)
    mosaic = np.empty((8, 8), np.uint16)
    mosaic[0::2, 0::2] = 200 * 257  # R
    mosaic[0::2, 1::2] = 100 * 257  # G
    mosaic[1::2, 0::2] = 100 * 257  # G
    mosaic[1::2, 1::2] = 20 * 257  # B
    out = to_rgb8(mosaic, "bayer_rggb16")
    np.testing.assert_array_equal(out[3, 3], [200, 100, 20])


def _rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited range YUV of each pixel (what COLOR_YUV2RGB_UYVY inverts)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return np.clip(np.round(np.stack([y, u, v], -1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuyv", "yuv422_yuy2"])
def test_to_rgb8_from_packed_yuv422(encoding: str) -> None:
    # Pairs of equal pixels so 4:2:2 chroma subsampling loses nothing.
    colours = np.array([[200, 30, 40], [20, 180, 60], [10, 40, 220], [128, 128, 128]], np.uint8)
    rgb = np.repeat(colours[None, :, :], 2, axis=1).repeat(2, axis=0)  # 2 x 8
    yuv = _rgb_to_yuv(rgb)
    packed = np.empty(rgb.shape[:2] + (2,), np.uint8)
    # UYVY: U0 Y0 V0 Y1 ; YUYV: Y0 U0 Y1 V0
    uyvy = encoding in ("yuv422", "uyvy")
    packed[:, 0::2, 0 if uyvy else 1] = yuv[:, 0::2, 1]
    packed[:, 1::2, 0 if uyvy else 1] = yuv[:, 0::2, 2]
    packed[..., 1 if uyvy else 0] = yuv[..., 0]
    arr = image_to_array(packed.tobytes(), encoding, 8, 2, 16, False)
    out = to_rgb8(arr, encoding)
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 3


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_to_rgb8_from_bayer_recovers_a_known_colour(pattern: str) -> None:
    colour = np.array([210, 90, 20], np.uint8)
    rgb = np.broadcast_to(colour, (8, 8, 3))
    index = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty((8, 8), np.uint8)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, index[pattern[k]]]
    arr = image_to_array(mosaic.tobytes(), f"bayer_{pattern}8", 8, 8, 8, False)
    out = to_rgb8(arr, f"bayer_{pattern}8")
    np.testing.assert_array_equal(out[2:6, 2:6], np.broadcast_to(colour, (4, 4, 3)))


def test_to_rgb8_rejects_depth_and_mismatched_arrays(rgb: np.ndarray) -> None:
    with pytest.raises(EncodingError, match="32FC1"):
        to_rgb8(np.zeros((2, 2), np.float32), "32FC1")
    with pytest.raises(EncodingError, match="does not match"):
        to_rgb8(rgb, "mono8")


def test_to_depth_m() -> None:
    mm = np.array([[0, 1000], [1234, 65535]], np.uint16)
    m = to_depth_m(mm, "16UC1")
    assert m.dtype == np.float32 and np.isnan(m[0, 0])
    np.testing.assert_allclose(m[[0, 1, 1], [1, 0, 1]], [1.0, 1.234, 65.535], rtol=1e-6)
    f = np.array([[1.5, 0.0, -1.0, np.inf]], np.float32)
    out = to_depth_m(f, "32FC1")
    assert out[0, 0] == 1.5 and np.isnan(out[0, 1:]).all()
    assert f[0, 1] == 0.0  # input untouched
    with pytest.raises(EncodingError, match="depth"):
        to_depth_m(np.zeros((2, 2), np.uint8), "mono8")


def test_depth_m_to_mm16_rounds_and_marks_what_16_bits_cannot_hold() -> None:
    depth = np.array(
        [[1.2344, 0.0016, 65.535, 65.5356], [70.0, np.nan, np.inf, -1.0], [0.0004, 0.0, 2.0, 1e9]]
    )
    # By hand: 1234.4 mm -> 1234, 1.6 -> 2, 65535 is the largest value; 65535.6 rounds past it
    # and 70 m, NaN, inf, negatives, < 0.5 mm and 0 have no reading: 0.
    expected = [[1234, 2, 65535, 0], [0, 0, 0, 0], [0, 0, 2000, 0]]
    mm = depth_m_to_mm16(depth.astype(np.float32))
    assert mm.dtype == np.uint16
    np.testing.assert_array_equal(mm, expected)
    back = to_depth_m(mm, "16UC1")  # the inverse: 0 reads back as "no depth"
    np.testing.assert_allclose(back[0, :3], [1.234, 0.002, 65.535], rtol=1e-6)
    assert np.isnan(back[1]).all()


# ---------------------------------------------------------------- array_to_image_fields


@pytest.mark.parametrize(
    ("encoding", "array_"),
    [
        ("rgb8", np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)),
        ("mono16", np.array([[1, 65535], [300, 7]], np.uint16)),
        ("32FC1", np.array([[0.5, np.nan, 3.25]], np.float32)),
        ("16UC1", np.array([[1000, 2000]], np.uint16)),
    ],
)
def test_image_fields_round_trip(encoding: str, array_: np.ndarray) -> None:
    fields = array_to_image_fields(array_, encoding)
    assert isinstance(fields, ImageFields)
    assert isinstance(fields.data, bytes)
    assert (fields.width, fields.height) == (array_.shape[1], array_.shape[0])
    assert fields.step == array_.shape[1] * bytes_per_pixel(encoding)
    back = image_to_array(
        fields.data, fields.encoding, fields.width, fields.height, fields.step, fields.is_bigendian
    )
    np.testing.assert_array_equal(back, array_)


def test_image_fields_from_non_contiguous_and_byte_swapped_arrays() -> None:
    full = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    view = full[::2, 1::2]
    back_fields = array_to_image_fields(view, "32FC1")
    back = image_to_array(back_fields.data, "32FC1", 3, 2, back_fields.step, False)
    np.testing.assert_array_equal(back, view)
    swapped = full.astype(">f4")
    f2 = array_to_image_fields(swapped, "32FC1")
    np.testing.assert_array_equal(image_to_array(f2.data, "32FC1", 6, 4, 24, False), full)


def test_image_fields_without_copy_view_the_packed_array() -> None:
    depth = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    f = array_to_image_fields(depth, "32FC1", copy=False)
    assert not isinstance(f.data, bytes) and len(f.data) == 4 * 6 * 4
    # A contiguous native array is not copied: the bytes are its own memory.
    assert np.shares_memory(np.frombuffer(f.data, np.float32), depth)
    np.testing.assert_array_equal(image_to_array(f.data, "32FC1", 6, 4, f.step, False), depth)
    # A view or a byte-swapped array is packed once, with the same result as copy=True.
    view = depth[::2, 1::2]
    packed = array_to_image_fields(view, "32FC1", copy=False)
    assert bytes(packed.data) == array_to_image_fields(view, "32FC1").data


def test_image_fields_validate_channels_and_dtype() -> None:
    with pytest.raises(EncodingError, match="channel"):
        array_to_image_fields(np.zeros((2, 2, 3), np.uint8), "mono8")
    with pytest.raises(EncodingError, match="dtype"):
        array_to_image_fields(np.zeros((2, 2), np.float64), "32FC1")


# ---------------------------------------------------------------- decode_compressed


def test_decode_png_and_jpeg(rgb: np.ndarray) -> None:
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    arr, enc = decode_compressed(png.tobytes(), "png")
    assert enc == "bgr8"
    np.testing.assert_array_equal(arr, bgr)
    arr, enc = decode_compressed(png.tobytes(), "rgb8; png compressed bgr8")
    assert enc == "rgb8"
    np.testing.assert_array_equal(arr, rgb)
    flat = np.full((16, 16, 3), (30, 120, 200), np.uint8)
    ok, jpg = cv2.imencode(".jpg", flat, [cv2.IMWRITE_JPEG_QUALITY, 95])
    arr, enc = decode_compressed(jpg.tobytes(), "jpeg")
    assert enc == "bgr8" and arr.shape == (16, 16, 3)
    assert np.abs(arr.astype(int) - flat).max() <= 3


def test_decode_16uc1_png_keeps_original_encoding() -> None:
    depth_mm = np.array([[0, 1000], [65535, 4321]], np.uint16)
    ok, png = cv2.imencode(".png", depth_mm)
    arr, enc = decode_compressed(png.tobytes(), "16UC1; png compressed")
    assert enc == "16UC1"
    np.testing.assert_array_equal(arr, depth_mm)


def test_decode_compressed_depth_32fc1_dequantises() -> None:
    # compressed_depth_image_transport: inv = quant_a / depth + quant_b, 0 = no depth.
    quant_a, quant_b = 100.0, 10.0
    depth = np.array([[1.0, 2.0], [0.0, 4.0]], np.float32)
    inv = np.zeros(depth.shape, np.uint16)
    inv[depth > 0] = np.round(quant_a / depth[depth > 0] + quant_b).astype(np.uint16)
    ok, png = cv2.imencode(".png", inv)
    payload = struct.pack("<iff", 0, quant_a, quant_b) + png.tobytes()
    arr, enc = decode_compressed(payload, "32FC1; compressedDepth png")
    assert enc == "32FC1"
    np.testing.assert_allclose(arr[depth > 0], depth[depth > 0], rtol=1e-6)
    assert np.isnan(arr[1, 0])


@pytest.mark.parametrize(
    "payload", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(40)]
)
def test_decode_corrupt_raises(payload: bytes) -> None:
    with pytest.raises(EncodingError):
        decode_compressed(payload, "png")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches cv2.imdecode."""
    calls: list[int] = []

    def _imdecode(buf, flags):
        calls.append(len(buf))
        raise AssertionError(f"cv2.imdecode was called on a {len(buf)}-byte payload")

    monkeypatch.setattr(cv2, "imdecode", _imdecode)
    return calls


@pytest.mark.parametrize("kind", ["jpeg_bomb", "png_bomb"])
def test_decompression_bomb_is_rejected_from_its_header(bad_payloads, no_decoding, kind) -> None:
    # 256 M pixels (768 MB decoded) from a few KB / 0.75 MB: over the default limit of 100 M.
    payload = getattr(bad_payloads, kind)()
    with pytest.raises(EncodingError, match=r"16000x16000 = 256000000 pixels.*limit of 100000000"):
        decode_compressed(payload, "jpeg" if kind == "jpeg_bomb" else "png")
    with pytest.raises(EncodingError, match="16000x16000"):
        decode_compressed(struct.pack("<iff", 0, 1.0, 0.0) + payload, "16UC1; compressedDepth png")
    assert no_decoding == []


def test_size_limit_is_the_callers(bad_payloads) -> None:
    jpg = bad_payloads.jpeg(64, 48)
    with pytest.raises(EncodingError, match=r"64x48 = 3072 pixels.*limit of 3071"):
        decode_compressed(jpg, "jpeg", max_pixels=3071)
    arr, _ = decode_compressed(jpg, "jpeg", max_pixels=3072)
    assert arr.shape == (48, 64, 3)


def test_decoder_complaints_go_into_the_error_not_to_stderr(capfd, bad_payloads) -> None:
    # Valid chunks and CRCs, but IDAT holds 10 of 48 rows: libpng's "Not enough image data".
    short = bad_payloads.png(64, 48, rows=10)
    with pytest.raises(EncodingError, match="libpng error: Not enough image data"):
        decode_compressed(short, "png")
    png = cv2.imencode(".png", np.full((24, 32, 3), 7, np.uint8))[1].tobytes()
    at = png.index(b"IDAT") + 6
    flipped = png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1:]
    with pytest.raises(EncodingError, match="libpng error: IDAT"):
        decode_compressed(flipped, "png")
    with pytest.raises(EncodingError, match="truncated"):
        decode_compressed(png[: len(png) // 2], "png")
    jpg = bad_payloads.jpeg()
    with pytest.raises(EncodingError, match="truncated"):
        decode_compressed(jpg[: len(jpg) // 2], "jpeg")
    err = capfd.readouterr().err
    assert "libpng" not in err and "JPEG" not in err and "WARN" not in err, err


def test_jpeg_with_invented_pixels_is_rejected_but_stray_bytes_are_not(capfd, bad_payloads):
    jpg = bad_payloads.jpeg(64, 48)
    clean, _ = decode_compressed(jpg, "jpeg")
    scan = jpg.index(b"\xff\xda") + 20
    broken = jpg[:scan] + bytes(40) + b"\xff\x00" * 8 + jpg[scan + 56:]  # zeros in the scan
    # OpenCV alone returns an image here, grey or garbled from the damage on.
    assert cv2.imdecode(np.frombuffer(broken, np.uint8), cv2.IMREAD_UNCHANGED) is not None
    assert "Corrupt JPEG data" in capfd.readouterr().err  # ... and says so on stderr
    with pytest.raises(EncodingError, match="Corrupt JPEG data: .*made-up pixels"):
        decode_compressed(broken, "jpeg")
    with pytest.raises(EncodingError, match="premature end of data segment"):
        decode_compressed(bad_payloads.jpeg_bomb(width=400, height=300), "jpeg")
    # libjpeg warns "3 extraneous bytes before marker 0xc0" but decodes every pixel.
    sof = jpg.index(b"\xff\xc0")
    stray, _ = decode_compressed(jpg[:sof] + b"\x00\x01\x02" + jpg[sof:], "jpeg")
    np.testing.assert_array_equal(stray, clean)
    assert capfd.readouterr().err == ""
