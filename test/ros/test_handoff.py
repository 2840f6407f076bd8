"""The one-deep hand-over between the depth node's network and publish stages."""

from __future__ import annotations

import threading

from recon3d_ros.ros.handoff import Handoff


def test_take_returns_the_item_put_and_then_nothing():
    h: Handoff[int] = Handoff()
    assert h.put(7)
    assert h.take(timeout=0.0) == 7
    assert h.take(timeout=0.01) is None


def test_put_waits_until_the_previous_item_is_taken():
    h: Handoff[int] = Handoff()
    h.put(1)
    second_done = threading.Event()

    def producer() -> None:
        h.put(2)
        second_done.set()

    t = threading.Thread(target=producer)
    t.start()
    # The second put cannot finish while item 1 is still there (nothing is ever overwritten).
    assert not second_done.wait(0.2)
    assert h.take(timeout=1.0) == 1
    assert second_done.wait(2.0)
    assert h.take(timeout=1.0) == 2
    t.join(2.0)


def test_close_releases_a_blocked_producer_and_refuses_new_items():
    h: Handoff[int] = Handoff()
    h.put(1)
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(h.put(2)))
    t.start()
    t.join(0.1)
    assert t.is_alive()  # blocked on item 1
    h.close()
    t.join(2.0)
    assert results == [False]
    assert h.closed and not h.put(3)
    assert h.take(timeout=0.0) == 1  # what was handed over before the close is still there
    assert h.take(timeout=0.0) is None


def test_close_wakes_a_waiting_consumer():
    h: Handoff[int] = Handoff()
    got: list[int | None] = []
    t = threading.Thread(target=lambda: got.append(h.take(timeout=10.0)))
    t.start()
    t.join(0.1)
    h.close()
    t.join(2.0)
    assert not t.is_alive() and got == [None]
