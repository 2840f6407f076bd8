"""CameraInfo pairing by stamp."""

from __future__ import annotations

from recon3d_ros.ros.sync import CameraInfoBuffer

MS = 1_000_000


def test_exact_stamp_wins_over_a_nearer_neighbour_order():
    buf: CameraInfoBuffer[str] = CameraInfoBuffer()
    for t in (100, 133, 166):
        buf.add(t * MS, f"info{t}")
    assert buf.match(133 * MS, 50 * MS) == "info133"


def test_nearest_within_tolerance_else_none():
    buf: CameraInfoBuffer[str] = CameraInfoBuffer()
    buf.add(100 * MS, "a")
    buf.add(200 * MS, "b")
    assert buf.match(190 * MS, 20 * MS) == "b"
    assert buf.match(130 * MS, 40 * MS) == "a"
    assert buf.match(150 * MS, 20 * MS) is None
    assert buf.match(150 * MS, 0) is None


def test_capacity_and_backwards_stamps_reset():
    buf: CameraInfoBuffer[int] = CameraInfoBuffer(capacity=3)
    for t in range(5):
        assert buf.add(t * MS, t) is False
    assert len(buf) == 3 and buf.match(0, 0) is None and buf.newest_stamp == 4 * MS
    assert buf.add(1 * MS, 99) is True  # source restarted
    assert len(buf) == 1 and buf.match(1 * MS, 0) == 99


def test_same_stamp_replaces():
    buf: CameraInfoBuffer[str] = CameraInfoBuffer()
    buf.add(5, "old")
    buf.add(5, "new")
    assert len(buf) == 1 and buf.match(5, 0) == "new"
