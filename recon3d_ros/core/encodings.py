"""sensor_msgs/Image buffers <-> numpy arrays, without cv_bridge.

Behaves like cv_bridge's ``imgmsg_to_cv2`` / ``cv2_to_imgmsg``:

* :func:`image_to_array` views a message buffer as ``H x W`` (one channel) or ``H x W x C``,
  honouring row padding (``step``) with a strided view instead of a copy, and converting
  big-endian multi-byte data to native byte order (the only case that copies).
* :func:`to_rgb8` converts any supported colour/mono/YUV/Bayer array to the ``H x W x 3``
  uint8 RGB a depth network expects.
* :func:`array_to_image_fields` produces the fields of an outgoing ``sensor_msgs/Image``
  with ``data`` as ``bytes``; :mod:`recon3d_ros.ros.conversions` wraps them in an
  ``array.array('B')``, the one type a message's ``uint8[]`` setter stores without checking
  and copying element by element (it does that for ``bytes`` and numpy arrays alike).
* :func:`to_depth_m` and :func:`depth_m_to_mm16` convert between metres and the 16-bit
  millimetre depth of REP 118 (0 = no measurement).
* :func:`decode_compressed` decodes ``sensor_msgs/CompressedImage`` payloads (jpeg, png and
  ``compressedDepth`` png). The size the payload's header declares is checked against a pixel
  limit *before* the decoder allocates (:mod:`recon3d_ros.core.image_header`), and what the C
  decoders print goes into the error message, not to stderr
  (:mod:`recon3d_ros.core.native_stderr`).

Encoding names follow ``sensor_msgs/image_encodings.hpp``. ROS's ``yuv422`` is UYVY byte order
(U0 Y0 V0 Y1); ``yuv422_yuy2`` is YUYV. Bayer names give the colour of the 2x2 tile read row by
row from the top-left pixel (``bayer_rggb8``: R G / G B).
"""

from __future__ import annotations

import array as _array
import re
import struct
import sys
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.image_header import inspect_image
from recon3d_ros.core.native_stderr import decoder_messages_captured
from recon3d_ros.errors import EncodingError

__all__ = [
    "SUPPORTED_ENCODINGS",
    "MAX_PIXELS",
    "ImageFields",
    "BufferLike",
    "bytes_per_pixel",
    "channels",
    "dtype_of",
    "image_to_array",
    "check_pixel_count",
    "to_rgb8",
    "to_depth_m",
    "depth_m_to_mm16",
    "MAX_DEPTH_MM16",
    "array_to_image_fields",
    "decode_compressed",
]

BufferLike = Union[bytes, bytearray, memoryview, "_array.array[int]", npt.NDArray[Any]]

#: Images larger than this are rejected as corrupt headers rather than allocated.
MAX_PIXELS = 100_000_000

_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)

# encoding -> (element dtype, channels)
_NAMED: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (_U8, 3),
    "bgr8": (_U8, 3),
    "rgba8": (_U8, 4),
    "bgra8": (_U8, 4),
    "rgb16": (_U16, 3),
    "bgr16": (_U16, 3),
    "rgba16": (_U16, 4),
    "bgra16": (_U16, 4),
    "mono8": (_U8, 1),
    "mono16": (_U16, 1),
    "yuv422": (_U8, 2),
    "uyvy": (_U8, 2),
    "yuyv": (_U8, 2),
    "yuv422_yuy2": (_U8, 2),
    "bayer_rggb8": (_U8, 1),
    "bayer_bggr8": (_U8, 1),
    "bayer_gbrg8": (_U8, 1),
    "bayer_grbg8": (_U8, 1),
    "bayer_rggb16": (_U16, 1),
    "bayer_bggr16": (_U16, 1),
    "bayer_gbrg16": (_U16, 1),
    "bayer_grbg16": (_U16, 1),
}

_GENERIC_DEPTHS: dict[str, np.dtype[Any]] = {
    "8U": np.dtype(np.uint8),
    "8S": np.dtype(np.int8),
    "16U": np.dtype(np.uint16),
    "16S": np.dtype(np.int16),
    "32S": np.dtype(np.int32),
    "32F": np.dtype(np.float32),
    "64F": np.dtype(np.float64),
}
_GENERIC_RE = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")

_GENERIC: dict[str, tuple[np.dtype, int]] = {
    f"{depth}C{n}": (dt, n) for depth, dt in _GENERIC_DEPTHS.items() for n in range(1, 5)
}

_TABLE: dict[str, tuple[np.dtype, int]] = {**_NAMED, **_GENERIC}

#: Every encoding :func:`image_to_array` accepts.
SUPPORTED_ENCODINGS: frozenset[str] = frozenset(_TABLE)

_SIXTEEN_BIT = frozenset({k for k, (dt, _) in _NAMED.items() if dt == _U16} | {"16UC1"})
_UYVY = frozenset({"yuv422", "uyvy"})
_YUYV = frozenset({"yuyv", "yuv422_yuy2"})


def _cv2() -> Any:
    import cv2

    return cv2


def _bayer_code(encoding: str) -> int:
    """Return the OpenCV demosaic code for a ROS Bayer encoding (result in RGB order).

    OpenCV historically names a pattern by the second row's 2nd/3rd pixels, so ROS ``rggb`` is
    ``COLOR_BayerBG2RGB``; newer OpenCV also has the unambiguous ``COLOR_BayerRGGB2RGB`` alias.
    """
    cv2 = _cv2()
    pattern = encoding[len("bayer_"):len("bayer_") + 4].upper()
    legacy = {"RGGB": "BG", "BGGR": "RG", "GBRG": "GR", "GRBG": "GB"}[pattern]
    return int(getattr(cv2, f"COLOR_Bayer{pattern}2RGB", getattr(cv2, f"COLOR_Bayer{legacy}2RGB")))


def _lookup(encoding: str) -> tuple[np.dtype, int]:
    try:
        return _TABLE[encoding]
    except (KeyError, TypeError):
        raise EncodingError(
            f"unsupported image encoding {encoding!r}; expected one of "
            f"{', '.join(sorted(_NAMED))} or a generic type like 8UC3 / 16UC1 / 32FC1 "
            "(sensor_msgs/image_encodings.hpp); configure the camera driver for a supported format"
        ) from None


def dtype_of(encoding: str) -> np.dtype:
    """Return the numpy element type of one channel of ``encoding``."""
    return _lookup(encoding)[0]


def channels(encoding: str) -> int:
    """Return how many interleaved channels ``encoding`` has (YUV 4:2:2: 2, raw Bayer: 1)."""
    return _lookup(encoding)[1]


def bytes_per_pixel(encoding: str) -> int:
    """Return the bytes one pixel occupies in a row (packed YUV 4:2:2 counts 2 per pixel)."""
    dt, n = _lookup(encoding)
    return dt.itemsize * n


def _as_byte_buffer(data: BufferLike) -> np.ndarray:
    """View any buffer-protocol object as flat uint8, without copying."""
    if isinstance(data, np.ndarray):
        flat = data if data.flags.c_contiguous else np.ascontiguousarray(data)
        return flat.reshape(-1).view(np.uint8)
    try:
        view = memoryview(data)
    except TypeError as exc:
        raise EncodingError(
            f"image data must be bytes, bytearray, memoryview, array.array or numpy array, "
            f"got {type(data).__name__}"
        ) from exc
    if not view.c_contiguous:
        return np.frombuffer(view.tobytes(), dtype=np.uint8)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return np.frombuffer(view, dtype=np.uint8)


def _check_size(width: int, height: int) -> None:
    if not isinstance(width, (int, np.integer)) or width <= 0:
        raise EncodingError(f"image width must be a positive integer, got {width!r}")
    if not isinstance(height, (int, np.integer)) or height <= 0:
        raise EncodingError(f"image height must be a positive integer, got {height!r}")
    if int(width) * int(height) > MAX_PIXELS:
        raise EncodingError(
            f"image size {width}x{height} exceeds {MAX_PIXELS} pixels; the message header is "
            "probably corrupt (width/height fields)"
        )


def image_to_array(
    data: BufferLike,
    encoding: str,
    width: int,
    height: int,
    step: int,
    is_bigendian: bool = False,
) -> npt.NDArray[Any]:
    """View a ``sensor_msgs/Image`` buffer as a numpy array.

    Returns ``height x width`` for one-channel encodings (mono, depth, raw Bayer) and
    ``height x width x C`` otherwise (``C = 2`` for packed YUV 4:2:2, which is what
    ``cv2.cvtColor(..., COLOR_YUV2RGB_UYVY)`` takes). The result shares memory with ``data``
    (read-only for ``bytes``) unless the data is big-endian multi-byte, which is byte-swapped
    into a new native array.

    Raises
    ------
    EncodingError
        unknown encoding, non-positive or absurd size, ``step`` smaller than a
        row, or ``data`` shorter than ``step * height``.

    """
    dt, n = _lookup(encoding)
    _check_size(width, height)
    width, height, step = int(width), int(height), int(step)
    row_bytes = width * dt.itemsize * n
    if step < row_bytes:
        raise EncodingError(
            f"image step {step} is smaller than width*bytes_per_pixel = {width}*"
            f"{dt.itemsize * n} = {row_bytes} for encoding {encoding!r}; the step field "
            "must be the full row length in bytes"
        )
    buf = _as_byte_buffer(data)
    needed = step * height
    if buf.size < needed:
        raise EncodingError(
            f"image data has {buf.size} bytes but step*height = {step}*{height} = {needed} are "
            f"required for a {width}x{height} {encoding!r} image; the message is truncated"
        )
    swap = bool(is_bigendian) and dt.itemsize > 1
    elem = dt.newbyteorder(">") if swap else dt.newbyteorder("=")
    shape: tuple[int, ...] = (height, width) if n == 1 else (height, width, n)
    strides: tuple[int, ...] = (
        (step, dt.itemsize) if n == 1 else (step, dt.itemsize * n, dt.itemsize)
    )
    view = np.ndarray(shape, dtype=elem, buffer=buf, offset=0, strides=strides)
    if swap:
        return view.astype(dt.newbyteorder("="))
    return view


def check_pixel_count(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """Raise :class:`EncodingError` when ``width`` x ``height`` exceeds ``max_pixels``.

    The one test of the node's ``max_input_pixels``, made before an image is converted so an
    oversized message costs no memory.
    """
    if width * height > max_pixels:
        raise EncodingError(
            f"{width}x{height} exceeds max_input_pixels={max_pixels} ({width * height} pixels "
            f"in the {what}); raise max_input_pixels only if the camera really sends such images"
        )


def to_rgb8(image: npt.NDArray[Any], encoding: str) -> npt.NDArray[np.uint8]:
    """Convert an image of ``encoding`` to contiguous ``H x W x 3`` uint8 RGB.

    16-bit inputs are scaled to 8 bit by dropping the low byte (``>> 8``). ``8UC3``/``8UC4`` are
    taken as BGR/BGRA (cv_bridge's convention) and ``8UC1``/``16UC1`` as mono. An ``rgb8``
    input that is already contiguous is returned as is (no copy), so it may be a read-only
    view of the message buffer: copy it before modifying it in place.

    Raises
    ------
    EncodingError
        the encoding has no colour meaning (e.g. ``32FC1`` depth) or the array's
        shape/dtype does not match the encoding.

    """
    rgb: npt.NDArray[np.uint8] = _convert_to_rgb8(image, encoding)
    return rgb


def _convert_to_rgb8(image: npt.NDArray[Any], encoding: str) -> Any:
    """Do :func:`to_rgb8`'s work (OpenCV's results are untyped ``MatLike``)."""
    cv2 = _cv2()
    dt, n = _lookup(encoding)
    arr = np.asarray(image)
    expected_ndim = 2 if n == 1 else 3
    if arr.ndim != expected_ndim or (n > 1 and arr.shape[2] != n) or arr.dtype != dt:
        raise EncodingError(
            f"array of shape {arr.shape} and dtype {arr.dtype} does not match encoding "
            f"{encoding!r} (expected {'H x W' if n == 1 else f'H x W x {n}'} of {dt})"
        )
    if encoding in _SIXTEEN_BIT:
        if encoding.startswith("bayer_"):
            rgb16 = cv2.cvtColor(np.ascontiguousarray(arr), _bayer_code(encoding))
            return (rgb16 >> 8).astype(np.uint8)
        arr = (arr >> 8).astype(np.uint8)
        encoding = {
            "rgb16": "rgb8", "bgr16": "bgr8", "rgba16": "rgba8", "bgra16": "bgra8",
        }.get(encoding, "mono8")
    if encoding == "rgb8":
        return np.ascontiguousarray(arr)
    if encoding in ("bgr8", "8UC3"):
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGBA2RGB)
    if encoding in ("bgra8", "8UC4"):
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGRA2RGB)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2RGB)
    if encoding in _UYVY or encoding in _YUYV:
        if arr.shape[1] % 2:
            raise EncodingError(
                f"packed YUV 4:2:2 ({encoding!r}) needs an even width, got {arr.shape[1]}"
            )
        code = cv2.COLOR_YUV2RGB_UYVY if encoding in _UYVY else cv2.COLOR_YUV2RGB_YUYV
        return cv2.cvtColor(np.ascontiguousarray(arr), code)
    if encoding.startswith("bayer_"):
        return cv2.cvtColor(np.ascontiguousarray(arr), _bayer_code(encoding))
    raise EncodingError(
        f"cannot convert encoding {encoding!r} to rgb8: it is not a colour or mono image; "
        "subscribe the node to the camera's colour stream"
    )


def to_depth_m(image: npt.NDArray[Any], encoding: str) -> npt.NDArray[np.float32]:
    """Convert a depth image to float32 metres with NaN where there is no depth.

    Follows REP 118 and depth_image_proc's ``convert_metric``: ``16UC1``/``mono16`` hold
    millimetres with 0 meaning "no reading"; ``32FC1``/``64FC1`` hold metres (non-positive and
    non-finite values become NaN). Always returns a new array.

    Raises
    ------
    EncodingError
        the encoding is not a depth encoding.

    """
    arr = np.asarray(image)
    if encoding in ("16UC1", "mono16"):
        out = arr.astype(np.float32) * np.float32(0.001)
        out[arr == 0] = np.nan
        return out
    if encoding in ("32FC1", "64FC1"):
        out = np.array(arr, dtype=np.float32, copy=True)
        with np.errstate(invalid="ignore"):
            out[~(np.isfinite(out) & (out > 0))] = np.nan
        return out
    raise EncodingError(
        f"encoding {encoding!r} is not a depth encoding; expected 16UC1 (millimetres) or "
        "32FC1 (metres) as in REP 118"
    )


#: The largest depth a 16-bit millimetre image holds: 65535 mm.
MAX_DEPTH_MM16 = int(np.iinfo(np.uint16).max)


def depth_m_to_mm16(depth: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.uint16]:
    """Convert metres to 16-bit millimetres (REP 118 ``16UC1``), the inverse of :func:`to_depth_m`.

    Each value is rounded to the nearest millimetre. What has no millimetre value in 1..65535
    becomes 0, "no measurement": NaN and infinities, depths that round to 0 mm or below, and
    depths beyond 65.535 m (clipping them to 65535 would record a false reading).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        mm = np.rint(np.asarray(depth, dtype=np.float64) * 1000.0)
        valid = np.isfinite(mm) & (mm > 0) & (mm <= MAX_DEPTH_MM16)
    return np.where(valid, mm, 0).astype(np.uint16)


@dataclass(frozen=True)
class ImageFields:
    """Field values for an outgoing ``sensor_msgs/Image``.

    ``data`` is ``bytes``, or with ``array_to_image_fields(..., copy=False)`` a flat byte view
    of the packed array (valid while that array lives), for a caller that copies it once into
    its own buffer (a message's ``array.array``).
    """

    data: bytes | memoryview
    encoding: str
    width: int
    height: int
    step: int
    is_bigendian: bool = False


def array_to_image_fields(
    image: npt.NDArray[Any], encoding: str, copy: bool = True
) -> ImageFields:
    """Pack an array into ``sensor_msgs/Image`` fields, like cv_bridge's ``cv2_to_imgmsg``.

    The array's dtype and channel count must match ``encoding`` (cv_bridge raises on a
    mismatch too). Data is written dense (``step = width * bytes_per_pixel``) in native byte
    order, which sets ``is_bigendian`` accordingly.
    """
    dt, n = _lookup(encoding)
    arr = np.asarray(image)
    if n == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3):
        raise EncodingError(f"image array must be 2-D or 3-D, got shape {arr.shape}")
    got_channels = 1 if arr.ndim == 2 else arr.shape[2]
    if got_channels != n:
        raise EncodingError(
            f"encoding {encoding!r} needs {n} channel(s) but the array of shape {arr.shape} "
            f"has {got_channels}; convert the image or pick a matching encoding"
        )
    if arr.dtype.kind != dt.kind or arr.dtype.itemsize != dt.itemsize:
        raise EncodingError(
            f"encoding {encoding!r} needs dtype {dt} but the array has {arr.dtype}; "
            f"cast it (e.g. array.astype(np.{dt.name})) or pick a matching encoding"
        )
    height, width = arr.shape[:2]
    _check_size(width, height)
    native = np.ascontiguousarray(arr, dtype=dt.newbyteorder("="))
    return ImageFields(
        data=native.tobytes() if copy else native.data.cast("B"),
        encoding=encoding,
        width=int(width),
        height=int(height),
        step=int(width) * dt.itemsize * n,
        is_bigendian=sys.byteorder == "big" and dt.itemsize > 1,
    )


# compressed_depth_image_transport's ConfigHeader: int32 format enum + float depthParam[2].
_DEPTH_HEADER = struct.Struct("<iff")

# libjpeg warnings after which it still returns an image, but one whose pixels from the damage
# on are invented (grey fill, shifted blocks). Not "N extraneous bytes before marker" (stray
# bytes between segments, which healthy webcams emit, pixels intact) nor "bad ICC marker".
_INVENTED_PIXELS = re.compile(
    r"Corrupt JPEG data: (?!\d+ extraneous bytes|bad ICC marker)|Premature end of JPEG file"
)


def _decode_bytes(payload: npt.NDArray[np.uint8], what: str, max_pixels: int) -> npt.NDArray[Any]:
    """Decode a jpeg/png/tiff payload whose header passes the size limit; stderr kept quiet."""
    cv2 = _cv2()
    try:
        header = inspect_image(payload.tobytes())
    except EncodingError as exc:
        raise EncodingError(f"cannot decode {what} ({payload.size} bytes): {exc}") from exc
    if header.pixels > max_pixels:
        raise EncodingError(
            f"{what} declares {header.width}x{header.height} = {header.pixels} pixels in its "
            f"{header.format} header, more than the limit of {max_pixels} pixels "
            "(max_input_pixels); rejected before decoding. A payload this small claiming this "
            "size is corrupt or hostile; raise max_input_pixels only if the camera really "
            "sends such images"
        )
    with decoder_messages_captured() as messages:
        try:
            decoded = cv2.imdecode(payload, cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:
            decoded, failure = None, str(exc).strip()
        else:
            failure = ""
    if decoded is None:
        reason = "; ".join(r for r in (messages.text(), failure) if r) or (
            "the payload is corrupt"
        )
        raise EncodingError(f"cannot decode {what} ({payload.size} bytes): {reason}")
    if any(_INVENTED_PIXELS.search(line) for line in messages.lines):
        raise EncodingError(
            f"cannot use {what} ({payload.size} bytes): {messages.text()}; the decoder filled "
            "the damaged part of the image with made-up pixels"
        )
    return np.asarray(decoded)


def decode_compressed(
    data: BufferLike, format: str, max_pixels: int = MAX_PIXELS  # noqa: A002
) -> tuple[npt.NDArray[Any], str]:
    """Decode a ``sensor_msgs/CompressedImage`` into ``(array, encoding)``.

    ``format`` is the message's field: ``"jpeg"``, ``"png"``, image_transport's
    ``"<orig>; jpeg compressed <coded>"`` or compressed_depth_image_transport's
    ``"<orig>; compressedDepth png"``. Colour comes back as ``bgr8``/``bgra8`` unless the
    original encoding was an RGB one (then ``rgb8``/``rgba8``, as image_transport restores it);
    one-channel data keeps the original name (e.g. ``16UC1``) when it matches. A ``32FC1``
    compressedDepth payload is dequantised to metres with NaN where no depth was coded.

    The width x height the jpeg/png header declares must not exceed ``max_pixels``; this is
    checked before anything is decoded, so a tiny payload claiming a huge image costs nothing.
    Whatever the C decoder prints about a corrupt payload becomes part of the error message
    instead of going to stderr. A jpeg that libjpeg decodes only by inventing pixels (bad
    Huffman code, premature end of a segment) is rejected; its harmless warnings (stray bytes
    between segments) are dropped and the image is used.

    Raises
    ------
    EncodingError
        empty, truncated or corrupt payload, a declared size over ``max_pixels``, a payload
        that is not jpeg/png/tiff, or an unsupported compression (e.g. ``rvl``).

    """
    fmt = (format or "").strip()
    original = fmt.split(";", 1)[0].strip() if ";" in fmt else ""
    payload = _as_byte_buffer(data)
    if payload.size == 0:
        raise EncodingError("compressed image data is empty; the publisher sent no payload")
    lowered = fmt.lower()
    if "compresseddepth" in lowered:
        return _decode_compressed_depth(payload, original or "16UC1", fmt, max_pixels)
    if "rvl" in lowered:
        raise EncodingError(
            f"compressed format {fmt!r} (RVL) is not supported; republish depth as png "
            "(compressedDepth png) or raw"
        )
    decoded = _decode_bytes(payload, f"CompressedImage with format {fmt!r}", max_pixels)
    return _name_decoded(decoded, original)


def _name_decoded(decoded: npt.NDArray[Any], original: str) -> tuple[npt.NDArray[Any], str]:
    cv2 = _cv2()
    if decoded.ndim == 2:
        natural = "mono8" if decoded.dtype == _U8 else "mono16"
        if original in SUPPORTED_ENCODINGS and _TABLE[original] == _TABLE[natural]:
            return decoded, original
        return decoded, natural
    nch = decoded.shape[2]
    if decoded.dtype == _U8:
        if nch == 3:
            if original == "rgb8":
                return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), "rgb8"
            return decoded, "bgr8"
        if nch == 4:
            if original == "rgba8":
                return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA), "rgba8"
            return decoded, "bgra8"
    if decoded.dtype == _U16 and nch in (3, 4):
        return decoded, "bgr16" if nch == 3 else "bgra16"
    raise EncodingError(
        f"decoded image has an unexpected layout {decoded.shape} {decoded.dtype}"
    )


def _decode_compressed_depth(
    payload: npt.NDArray[np.uint8], original: str, fmt: str, max_pixels: int
) -> tuple[npt.NDArray[Any], str]:
    if payload.size <= _DEPTH_HEADER.size:
        raise EncodingError(
            f"compressedDepth payload of {payload.size} bytes is shorter than its "
            f"{_DEPTH_HEADER.size}-byte header; the message is truncated"
        )
    _, quant_a, quant_b = _DEPTH_HEADER.unpack_from(payload[: _DEPTH_HEADER.size].tobytes())
    decoded = _decode_bytes(
        payload[_DEPTH_HEADER.size:], f"compressedDepth image {fmt!r}", max_pixels
    )
    if decoded.ndim != 2 or decoded.dtype != _U16:
        raise EncodingError(
            f"compressedDepth image must decode to 16-bit one-channel, got {decoded.shape} "
            f"{decoded.dtype}"
        )
    if original == "32FC1":
        inv = decoded.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.float32(quant_a) / (inv - np.float32(quant_b))
        depth[decoded == 0] = np.nan
        return depth.astype(np.float32, copy=False), "32FC1"
    if original in ("16UC1", "mono16"):
        return decoded, original
    raise EncodingError(
        f"compressedDepth original encoding {original!r} is not supported; expected 16UC1 "
        "or 32FC1"
    )
