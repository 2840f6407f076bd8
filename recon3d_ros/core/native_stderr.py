"""Keep what C image decoders print to stderr out of the log, and hand it to the caller.

libpng reports a corrupt file by printing ``libpng error: Not enough image data`` to the
process's stderr (OpenCV installs no handler), libjpeg prints its warnings there, and OpenCV
adds its own ``[ WARN:0@...] global grfmt_png.cpp ...`` lines. A node fed a stream of bad
frames would print one such line per frame next to its own throttled warning.
:func:`decoder_messages_captured` points file descriptor 2 at a private buffer for the
duration of one decode, so the decoder's words become part of the caller's error message
instead.

Other threads keep writing to stderr meanwhile (rclpy's log, Python tracebacks): whatever
they wrote inside the window is copied to the real stderr as soon as it closes, in order; only
lines that match a known decoder message are held back. Decodes that capture are serialised
by a lock; a decode takes milliseconds, so other threads' lines are delayed by at most that.
A child process started by another thread inside the window would inherit the buffer as its
stderr, so callers should not spawn processes concurrently with a decode.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

__all__ = ["DecoderMessages", "decoder_messages_captured"]

# Lines libpng, libjpeg(-turbo), libtiff and OpenCV's own logger print while decoding.
_DECODER_LINE = re.compile(
    rb"^(?:libpng (?:error|warning)"
    rb"|Corrupt JPEG data|Premature end of JPEG file|Invalid JPEG file structure"
    rb"|Invalid SOS parameters|Inconsistent progression sequence|Unsupported marker type"
    rb"|Warning: unknown JFIF revision|Application transferred too (?:many|few) scanlines"
    rb"|Bogus (?:marker|DQT|DHT|Huffman|input colorspace|sampling)"
    rb"|TIFF\w*:"
    rb"|\[ ?(?:FATAL|ERROR|WARN|INFO|DEBUG|VERBOSE):\d+@[\d.]+\] )"
)

_LOCK = threading.Lock()
_sink_fd: int | None = None
_sink_file: IO[bytes] | None = None  # keeps a TemporaryFile sink open where memfd is missing


@dataclass
class DecoderMessages:
    """Decoder lines caught during one :func:`decoder_messages_captured` window."""

    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "; ".join(self.lines)


def _sink() -> int:
    global _sink_fd, _sink_file
    if _sink_fd is None:
        if hasattr(os, "memfd_create"):
            _sink_fd = os.memfd_create("recon3d-decoder-stderr", os.MFD_CLOEXEC)
        else:
            _sink_file = tempfile.TemporaryFile()
            _sink_fd = _sink_file.fileno()
    return _sink_fd


def _drain(sink: int) -> bytes:
    size = os.lseek(sink, 0, os.SEEK_CUR)
    os.lseek(sink, 0, os.SEEK_SET)
    chunks = []
    while size > 0:
        chunk = os.read(sink, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    os.ftruncate(sink, 0)
    os.lseek(sink, 0, os.SEEK_SET)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextmanager
def decoder_messages_captured() -> Iterator[DecoderMessages]:
    """Run the body with fd 2 captured; decoder lines go to the yielded object, the rest back.

    If stderr cannot be redirected (fd 2 closed), the body runs unchanged.
    """
    caught = DecoderMessages()
    with _LOCK:
        try:
            sink = _sink()
            saved = os.dup(2)
        except OSError:
            saved = -1
        if saved < 0:
            yield caught
            return
        try:
            sys.stderr.flush()  # Python's own buffered text belongs before the window
        except (AttributeError, OSError, ValueError):
            pass
        os.dup2(sink, 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            _sort_out(_drain(sink), caught)


def _sort_out(data: bytes, caught: DecoderMessages) -> None:
    if not data:
        return
    others = bytearray()
    for line in data.splitlines(keepends=True):
        if _DECODER_LINE.match(line):
            caught.lines.append(line.decode("utf-8", "replace").strip())
        else:
            others += line
    if others:
        try:
            _write_all(2, bytes(others))
        except OSError:
            pass
