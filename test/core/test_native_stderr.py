"""Tests for recon3d_ros.core.native_stderr: decoder lines caught, everyone else's kept."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from recon3d_ros.core.native_stderr import decoder_messages_captured


def test_libpng_error_is_caught_not_printed(capfd, bad_payloads) -> None:
    short = np.frombuffer(bad_payloads.png(64, 48, rows=10), np.uint8)  # IDAT ends early
    with decoder_messages_captured() as caught:
        assert cv2.imdecode(short, cv2.IMREAD_UNCHANGED) is None
    assert any("libpng error: Not enough image data" in line for line in caught.lines)
    assert capfd.readouterr().err == ""


def test_other_writers_reach_stderr_in_order(capfd) -> None:
    with decoder_messages_captured() as caught:
        os.write(2, b"[WARN] [1.0] [depth_node]: before\n")
        os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        writer = threading.Thread(target=os.write, args=(2, b"from another thread\n"))
        writer.start()
        writer.join()
        os.write(2, b"[ WARN:0@0.067] global grfmt_png.cpp:793 readFromStreamOrBuffer x\n")
    assert caught.lines == [
        "libpng warning: iCCP: known incorrect sRGB profile",
        "[ WARN:0@0.067] global grfmt_png.cpp:793 readFromStreamOrBuffer x",
    ]
    assert capfd.readouterr().err == "[WARN] [1.0] [depth_node]: before\nfrom another thread\n"
    os.write(2, b"after\n")  # fd 2 is restored
    assert capfd.readouterr().err == "after\n"


def test_windows_do_not_leak_into_each_other(capfd) -> None:
    with decoder_messages_captured() as first:
        os.write(2, b"libpng error: one\n")
    with decoder_messages_captured() as second:
        pass
    assert first.lines == ["libpng error: one"] and second.lines == []
    assert capfd.readouterr().err == ""
