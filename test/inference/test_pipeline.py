"""FramePipeline: the frame path shared by the node, bench, eval and the offline tools."""

from __future__ import annotations

import numpy as np

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.inference.engine import StageTimings
from recon3d_ros.inference.pipeline import FrameOptions, FramePipeline


class _Flat:
    """An engine that sees a wall at 2 m."""

    timings = StageTimings()

    def infer(self, rgb, camera, output_size=None):
        w, h = output_size or (camera.width, camera.height)
        return np.full((h, w), 2.0, np.float32)


def test_the_cloud_follows_the_options_its_frame_was_made_with():
    cam = PinholeCamera(8, 6, 10.0, 10.0, 3.5, 2.5)
    pipeline = FramePipeline(_Flat(), FrameOptions(cloud_stride=2))  # type: ignore[arg-type]
    result = pipeline.process(np.zeros((6, 8, 3), np.uint8), cam)
    # The node builds the cloud on its publish thread; a parameter change in between applies
    # from the next frame on, not to this frame's cloud.
    pipeline.options = FrameOptions(cloud_stride=1)
    cloud = pipeline.cloud(result)
    assert (cloud.width, cloud.height) == (4, 3)  # every 2nd pixel of 8 x 6
    assert pipeline.cloud(pipeline.process(np.zeros((6, 8, 3), np.uint8), cam)).width == 8


def test_depth_range_applies_to_the_depth():
    cam = PinholeCamera(8, 6, 10.0, 10.0, 3.5, 2.5)
    pipeline = FramePipeline(_Flat(), FrameOptions(max_depth=1.5))  # type: ignore[arg-type]
    result = pipeline.process(np.zeros((6, 8, 3), np.uint8), cam)
    assert np.isnan(result.depth).all()  # the 2 m wall is beyond 1.5 m: invalid (REP 118)
