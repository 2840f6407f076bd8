"""Eval figures are real images with the expected layout."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from recon3d_ros.evaluation.plots import colorize_depth, frame_panel, summary_plot  # noqa: E402


def test_colorize_marks_invalid_black_and_orders_depths():
    d = np.array([[1.0, 5.0, np.nan]], np.float32)
    img = colorize_depth(d, 1.0, 5.0)
    assert img.shape == (1, 3, 3) and img[0, 2].tolist() == [0, 0, 0]
    assert img[0, 0].tolist() != img[0, 1].tolist()


def test_panel_and_summary(tmp_path):
    gt = np.linspace(1, 4, 20 * 30, dtype=np.float32).reshape(20, 30)
    panel = frame_panel(
        np.zeros((20, 30, 3), np.uint8), gt, gt * 1.1, {"abs_rel": 0.1, "delta1": 1.0}, "x"
    )
    assert panel.shape == (20, 120, 3)
    res = {m: {"abs_rel": 0.2, "delta1": 0.7} for m in ("metric", "median", "scale_shift")}
    res["baselines"] = {
        "constant": {"metric": {"abs_rel": 0.5, "delta1": 0.3}},
        "ground_plane": {"metric": {"abs_rel": 0.6, "delta1": 0.2}},
    }
    path = summary_plot([("a", res), ("b", res)], tmp_path / "s.png")
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] == 360
    assert (img < 250).any()  # something was drawn
