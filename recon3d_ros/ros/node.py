"""``depth_node``: monocular metric depth, its CameraInfo and an organized point cloud.

Topics (relative, so launch files remap them):

* in  ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage,
  ``transport: compressed``) and ``camera_info``; sensor-data QoS by default.
* in (``scale_mode: sparse``) ``scale/points`` (PointCloud2, xyz in the frame that
  ``scale_extrinsic`` maps to the camera) and ``scale/depth`` (Image 32FC1 m / 16UC1 mm,
  registered to the camera image): metric references for the scale of a relative model.
* out ``depth/image`` (32FC1, metres along z, NaN invalid, the image's header),
  ``depth/camera_info`` (intrinsics of the depth image, same header), ``points``
  (organized PointCloud2, xyz or xyzrgb, frame = the image's), ``/diagnostics``.

Latency design: *newest frame wins*. The subscription callbacks only store messages: the image
callback puts the newest image in a one-element slot, replacing (and counting as dropped) any
image the worker has not taken yet; the camera_info callback adds to a small buffer keyed by
stamp. A single worker thread takes the slot once its CameraInfo is there (pairing, below),
decodes it and hands it to :class:`~recon3d_ros.inference.pipeline.FramePipeline` (rectify ->
inference -> metric scale -> filter; the same code ``recon3d bench``/``eval`` run), then
publishes. When the camera is faster than the
model, frames are dropped, never queued, so the age of what is published is bounded by about
one inference time. Callbacks stay microseconds long, so one executor thread serves them, the
parameter services and the diagnostics timer while inference runs (torch/onnxruntime release
the GIL).

Pairing (``camera_info_policy: stamped``, :mod:`recon3d_ros.ros.sync`): the CameraInfo with the
image's exact stamp wins, and the image waits for it (drivers publish the two in either order,
and DDS delivers the odd CameraInfo late) up to ``camera_info_wait``; the wait ends as soon as a
CameraInfo newer than the image arrives, and it carries over when a newer image replaces the
waiting one, so a stream without CameraInfo is reported rather than starved. Failing the exact
stamp, the nearest CameraInfo within ``camera_info_tolerance`` is used only if it describes the
same calibration as the newest one, so a calibration or resolution change applies from its own
frame. ``camera_info_policy: latched`` (a camera that publishes one CameraInfo) uses the newest
CameraInfo for every image and subscribes reliable + transient_local, so a CameraInfo published
before the node started is received. /diagnostics counts which way each image was paired.

Stamps: an image or CameraInfo whose stamp is invalid (``nanosec`` >= 1e9, negative ``sec``) is
dropped. Newest frame wins, so image stamps must not go backwards: an image older than the last
one, or more than a second ahead of both it and the node's clock, is dropped, and a single such
outlier leaves the timeline as it was (the next normal image is served). When the break
persists (the next image continues from the outlier: a bag loop, a simulator reset, a clock
step) the stream is followed there from its second frame. CameraInfo stamps are judged the
same way (with ``stamped``).

Loss: frames lost before the node saw them (in DDS, or pushed out of the subscription's queue)
are counted from the gaps in a steady camera's stamps (``frames_lost_before_node``) and, where
the rmw reports it, from the image subscription's message-lost event.

Geometry: intrinsics always come from CameraInfo (K, with its ROI and binning). Distorted images
are undistorted into P's intrinsics (image_proc's convention; K when P is unset) unless
``input_is_rectified``; the depth, its CameraInfo and the cloud then follow that camera, resized
exactly (cv2 pixel-centre convention) when ``output_width/height`` or ``output_scale`` change the
size. Caches (rectification maps, cloud rays) are keyed by the calibration, so a new resolution
or K mid-stream just builds new ones.

Metric scale (``scale_mode`` != none): the pipeline's
:class:`~recon3d_ros.inference.scale.MetricScaler` scales the engine's output before filtering.
Reference callbacks only convert and store the newest reference; the worker hands it to the
pipeline, which only the worker touches.

Bad input never stops the node: each frame that cannot be used is dropped, and its cause is
logged once per (topic, cause), then at most every 10 s with a count, and shown in /diagnostics.

Exit status (``depth_node.py``): 0 after SIGINT or SIGTERM at any time, start-up included; 1
when it cannot start (bad arguments, parameters, model, device or backend), with one line on
stderr that says what to do.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.encodings import check_pixel_count
from recon3d_ros.errors import (
    CameraModelError,
    ConfigError,
    EncodingError,
    FrameRejected,
    Recon3dError,
)
from recon3d_ros.inference.pipeline import FrameResult, ScaleReference
from recon3d_ros.ros import topics
from recon3d_ros.ros.conversions import (
    camera_from_info,
    camera_to_info_msg,
    cloud_msg_to_xyz,
    cloud_to_msg,
    compressed_to_rgb,
    depth_image_to_m,
    depth_to_image_msg,
    image_to_rgb,
    rectified_camera_from_info,
    stamp_to_ns,
)
from recon3d_ros.ros.handoff import Handoff
from recon3d_ros.ros.diagnostics import (
    FaultReporter,
    FrameStats,
    build_status,
    loss_values,
    pairing_values,
    scale_values,
)
from recon3d_ros.ros.params import NodeSettings, declare_all, settings_from_values
from recon3d_ros.ros.qos import input_qos, make_qos, output_qos
from recon3d_ros.ros.sync import (
    FUTURE_LIMIT_NS,
    CameraInfoPairer,
    GapCounter,
    Paired,
    StampTimeline,
    Unpaired,
    invalid_stamp,
)

__all__ = ["DepthNode", "NODE_NAME"]

NODE_NAME = "depth_node"

ImageMsg = Union[Image, CompressedImage]


@dataclass
class _Pending:
    msg: ImageMsg
    stamp_ns: int
    received_ns: int  # node clock when the callback had it


@dataclass
class _Outgoing:
    """A processed frame on its way from the network stage to the publish stage."""

    header: Any
    result: FrameResult
    settings: NodeSettings  # the parameters the frame was processed with
    pending: _Pending
    started_ns: int  # node clock when the network stage took the frame
    handed_ns: int  # ... and when it handed it to the publish stage


class DepthNode(Node):
    """The depth node; construction loads the model (raises :class:`Recon3dError` on failure)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._settings: NodeSettings = declare_all(self)
        s = self._settings
        # Everything between the decoded image and the published arrays (ROS-free, shared with
        # bench, eval and the offline tools); only the worker thread calls it.
        self.pipeline = s.build_pipeline()  # loads the network too
        self.engine = self.pipeline.engine
        self.get_logger().info(
            f"model '{s.model}' ({self.engine.config.name}, input "
            f"{self.engine.config.input_width}x{self.engine.config.input_height} "
            f"{self.engine.config.resize_mode}), backend {self.engine.backend}, device "
            f"{self.engine.device}, precision {self.engine.precision}, cpu_threads "
            f"{s.cpu_threads or 'default'}"
        )

        self._stats = FrameStats()
        self._faults = FaultReporter(self.get_logger().warning)
        self._cond = threading.Condition()
        self._slot: _Pending | None = None
        self._pairer: CameraInfoPairer[CameraInfo] = CameraInfoPairer(s.camera_info_policy)
        self._image_timeline = StampTimeline()
        self._info_timeline = StampTimeline()
        self._gaps = GapCounter()
        self._lost_by_middleware: int | None = None  # None: the rmw has no message-lost event
        self._stop = threading.Event()
        # Newest metric references (sparse scale mode), handed to the scaler by the worker.
        self._ref_points: npt.NDArray[np.float64] | None = None
        self._ref_depth: npt.NDArray[np.float32] | None = None

        out_qos = output_qos(s.output_qos_reliability, s.output_qos_durability, s.output_qos_depth)
        self._depth_pub = self.create_publisher(Image, topics.DEPTH_IMAGE, out_qos)
        self._info_pub = self.create_publisher(CameraInfo, topics.DEPTH_CAMERA_INFO, out_qos)
        self._points_pub = self.create_publisher(PointCloud2, topics.POINTS, out_qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)

        in_qos = input_qos(s.input_qos_reliability, s.input_qos_depth)
        try:  # count the middleware's lost messages where the rmw reports them
            events = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
            self._image_sub = self._subscribe_image(s.transport, in_qos, events)
            self._lost_by_middleware = 0
        except UnsupportedEventTypeError:
            self._image_sub = self._subscribe_image(s.transport, in_qos, None)
        # A latched CameraInfo is published reliable + transient_local (ROS 2's "latched"):
        # only a subscription asking for the same receives the message sent before it joined.
        info_qos = (
            make_qos("reliable", "transient_local", 1)
            if s.camera_info_policy == "latched"
            else in_qos
        )
        self._info_sub = self.create_subscription(
            CameraInfo, topics.CAMERA_INFO, self._on_camera_info, info_qos
        )
        self.image_topic = self._image_sub.topic_name
        self.info_topic = self._info_sub.topic_name
        if s.scale_mode == "sparse":
            self._scale_points_sub = self.create_subscription(
                PointCloud2, topics.SCALE_POINTS, self._on_scale_points, in_qos
            )
            self._scale_depth_sub = self.create_subscription(
                Image, topics.SCALE_DEPTH, self._on_scale_depth, in_qos
            )
            self.get_logger().info(
                f"metric scale from '{self._scale_points_sub.topic_name}' and "
                f"'{self._scale_depth_sub.topic_name}'"
            )
        elif s.scale_mode != "none":
            self.get_logger().info(f"metric scale mode '{s.scale_mode}'")
        self.get_logger().info(
            f"subscribed to '{self.image_topic}' and '{self.info_topic}'; publishing "
            f"'{self._depth_pub.topic_name}', '{self._info_pub.topic_name}', "
            f"'{self._points_pub.topic_name}'"
        )

        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._diag_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)
        # Two stages (see ros/handoff.py): the network stage hands each frame to the publish
        # stage and starts on the next while that one is serialised and sent.
        self._outgoing: Handoff[_Outgoing] = Handoff()
        self._worker = threading.Thread(target=self._work, name="depth_worker", daemon=True)
        self._publisher = threading.Thread(
            target=self._publish_loop, name="depth_publisher", daemon=True
        )
        self._publisher.start()
        self._worker.start()

    # ------------------------------------------------------------------ parameters
    @property
    def settings(self) -> NodeSettings:
        return self._settings

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = self._settings.as_dict()
        for p in params:
            if p.name in values:
                values[p.name] = p.value
        try:
            settings_from_values(values)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        values = self._settings.as_dict()
        for p in params:
            if p.name in values:
                values[p.name] = p.value
        # One reference swap: the worker sees the old or the new settings, never a mix.
        self._settings = settings_from_values(values)
        self.pipeline.options = self._settings.frame_options()  # the next frame's on
        self.get_logger().info(
            "parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params)
        )

    # ------------------------------------------------------------- callbacks (executor thread)
    def _subscribe_image(
        self, transport: str, qos: Any, events: SubscriptionEventCallbacks | None
    ) -> Any:
        if transport == "compressed":
            return self.create_subscription(
                CompressedImage,
                topics.IMAGE_COMPRESSED,
                self._on_image,
                qos,
                event_callbacks=events,
            )
        return self.create_subscription(
            Image, topics.IMAGE, self._on_image, qos, event_callbacks=events
        )

    def _on_message_lost(self, info: Any) -> None:
        self._lost_by_middleware = int(info.total_count)

    def _on_image(self, msg: ImageMsg) -> None:
        self._stats.image_received()
        stamp = msg.header.stamp
        problem = invalid_stamp(stamp.sec, stamp.nanosec)
        if problem is not None:
            with self._cond:
                self._gaps.note_rejected()
            self._reject(FrameRejected(self.image_topic, "invalid stamp", problem))
            return
        stamp_ns = stamp_to_ns(stamp)
        now_ns = self.get_clock().now().nanoseconds
        with self._cond:
            verdict = self._image_timeline.check(stamp_ns, now_ns)
            if verdict.accepted:
                if verdict.restarted:
                    self._gaps.restart()
                    # CameraInfos of the old timeline would fail this image's pairing.
                    self._pairer.buffer.discard_newer_than(stamp_ns + FUTURE_LIMIT_NS)
                self._gaps.add(stamp_ns)
                if self._slot is not None:
                    self._stats.frame_dropped()
                self._slot = _Pending(msg, stamp_ns, now_ns)
                self._cond.notify()
            else:
                self._gaps.note_rejected()
        if not verdict.accepted:
            self._reject(FrameRejected(self.image_topic, verdict.cause, verdict.detail))
        elif verdict.restarted:
            self.get_logger().info(
                f"'{self.image_topic}' stamps jumped to {stamp_ns / 1e9:.6f} s and stayed there: "
                "following the new timeline (source restarted or its clock stepped)",
                throttle_duration_sec=10.0,
            )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._stats.camera_info_received()
        stamp = msg.header.stamp
        problem = invalid_stamp(stamp.sec, stamp.nanosec)
        if problem is not None:
            self._faults.report(self.info_topic, "invalid stamp", problem)
            return
        stamp_ns = stamp_to_ns(stamp)
        if self._pairer.policy == "stamped":
            # A latched CameraInfo's stamp is not used for pairing: any stamp will do there.
            verdict = self._info_timeline.check(stamp_ns, self.get_clock().now().nanoseconds)
            if not verdict.accepted:
                self._faults.report(self.info_topic, verdict.cause, verdict.detail)
                return
        with self._cond:
            went_back = self._pairer.add(stamp_ns, msg)
            self._cond.notify()
        if went_back:
            self.get_logger().info(
                f"'{self.info_topic}' stamps went backwards: dropped the older CameraInfo "
                "messages (source restarted?)",
                throttle_duration_sec=10.0,
            )

    def _on_scale_points(self, msg: PointCloud2) -> None:
        topic = self._scale_points_sub.topic_name
        try:
            points = cloud_msg_to_xyz(msg)
        except Recon3dError as exc:
            self._faults.report(topic, "bad reference cloud", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad message must never kill the node
            self._faults.report(topic, "unreadable reference cloud", repr(exc))
            return
        with self._cond:
            self._ref_points = points

    def _on_scale_depth(self, msg: Image) -> None:
        topic = self._scale_depth_sub.topic_name
        try:
            check_pixel_count(msg.width, msg.height, self._settings.max_input_pixels, topic)
            depth = depth_image_to_m(msg)
        except Recon3dError as exc:
            self._faults.report(topic, "bad reference depth", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad message must never kill the node
            self._faults.report(topic, "unreadable reference depth", repr(exc))
            return
        with self._cond:
            self._ref_depth = depth

    # ------------------------------------------------------------------ worker thread
    def _take_job(self) -> tuple[_Pending, CameraInfo] | None:
        """Return the newest image and its CameraInfo, or None after waiting briefly."""
        with self._cond:
            job, rejected = self._match_locked()
            if job is None and rejected is None:
                self._cond.wait(timeout=0.05)  # woken by a new image or CameraInfo
        if rejected is not None:
            self._reject(rejected)
        return job

    def _match_locked(
        self,
    ) -> tuple[tuple[_Pending, CameraInfo] | None, FrameRejected | None]:
        """Pair the slot's image with a CameraInfo, or give up on it (caller holds the lock)."""
        pending = self._slot
        if pending is None:
            return None, None
        s = self._settings
        result = self._pairer.pair(
            pending.stamp_ns,
            time.monotonic(),
            int(s.camera_info_tolerance * 1e9),
            s.camera_info_wait,
        )
        if result is None:
            return None, None  # its CameraInfo may still be on the way
        self._slot = None
        if isinstance(result, Paired):
            return (pending, result.info), None
        return None, self._unpaired(pending, result, s)

    def _unpaired(self, pending: _Pending, result: Unpaired, s: NodeSettings) -> FrameRejected:
        """Say why an image found no CameraInfo and what to change."""
        topic, stamp = self.info_topic, pending.stamp_ns / 1e9
        if result.cause == CameraInfoPairer.CAUSE_NONE:
            hint = (
                " (camera_info_policy 'latched' subscribes reliable + transient_local: the "
                "publisher must offer that too)"
                if s.camera_info_policy == "latched"
                else ""
            )
            return FrameRejected(
                topic,
                result.cause,
                f"no CameraInfo received for {result.waited_s:.1f} s; the node needs the "
                f"camera's intrinsics: publish '{topic}' (remap it to your camera's){hint}",
            )
        newest = (result.newest_stamp or 0) / 1e9
        if result.cause == CameraInfoPairer.CAUSE_CHANGING:
            return FrameRejected(
                topic,
                result.cause,
                f"no CameraInfo has the image stamp {stamp:.6f}, and the nearest one "
                f"({(result.nearest_gap_ns or 0) / 1e6:.1f} ms away) describes another "
                f"calibration than the newest ({newest:.6f}); publish each CameraInfo with its "
                "image's stamp",
            )
        return FrameRejected(
            topic,
            result.cause,
            f"no CameraInfo within {s.camera_info_tolerance} s of the image stamp {stamp:.6f} "
            f"(newest CameraInfo {newest:.6f}, waited {result.waited_s:.2f} s); raise "
            "camera_info_tolerance if the driver stamps them differently, camera_info_wait if "
            "they arrive late, or set camera_info_policy 'latched' for a camera that publishes "
            "one CameraInfo",
        )

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._take_job()
            if job is None:
                continue
            if not self._guarded(self._process, *job):
                return

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            out = self._outgoing.take(timeout=0.05)
            if out is not None and not self._guarded(self._publish_frame, out):
                return

    def _guarded(self, stage: Any, *args: Any) -> bool:
        """Run one stage of a frame; a failure drops the frame. False: the node is stopping."""
        try:
            stage(*args)
        except FrameRejected as exc:
            self._reject(exc)
        except Recon3dError as exc:
            self._reject(FrameRejected(self.image_topic, type(exc).__name__, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a bad frame must never kill the worker
            if self._stop.is_set() or not self.context.ok():
                return False  # shutting down: publishers are gone, nothing to report
            self.get_logger().error(
                f"unexpected error processing a frame: {exc}\n{traceback.format_exc()}",
                throttle_duration_sec=10.0,
            )
            self._stats.frame_rejected()
        return True

    def _reject(self, exc: FrameRejected) -> None:
        self._stats.frame_rejected()
        self._faults.report(exc.topic, exc.cause, exc.detail)

    def _decode(self, msg: ImageMsg, s: NodeSettings) -> npt.NDArray[np.uint8]:
        topic = self.image_topic
        if isinstance(msg, Image):
            if msg.width == 0 or msg.height == 0:
                raise FrameRejected(topic, "empty image", f"size {msg.width}x{msg.height}")
            try:
                check_pixel_count(msg.width, msg.height, s.max_input_pixels)
            except EncodingError as exc:
                raise FrameRejected(topic, "image too large", str(exc)) from exc
            try:
                return image_to_rgb(msg)
            except EncodingError as exc:
                raise FrameRejected(topic, "bad image", str(exc)) from exc
        try:
            # The size its header declares is checked before anything is decoded.
            return compressed_to_rgb(msg, s.max_input_pixels)
        except EncodingError as exc:
            raise FrameRejected(topic, "bad compressed image", str(exc)) from exc

    def _camera_for(
        self, info: CameraInfo, msg: ImageMsg, width: int, height: int
    ) -> PinholeCamera:
        try:
            camera = camera_from_info(info)
        except CameraModelError as exc:
            raise FrameRejected(self.info_topic, "bad camera_info", str(exc)) from exc
        if (camera.width, camera.height) != (width, height):
            raise FrameRejected(
                self.info_topic,
                "camera_info size disagrees with the image",
                f"CameraInfo (after ROI/binning) is {camera.width}x{camera.height} but the image "
                f"is {width}x{height}; remap {topics.CAMERA_INFO} to this image's CameraInfo",
            )
        if info.header.frame_id != msg.header.frame_id:
            raise FrameRejected(
                self.info_topic,
                "camera_info frame_id disagrees with the image",
                f"CameraInfo frame_id '{info.header.frame_id}' != image frame_id "
                f"'{msg.header.frame_id}'",
            )
        return camera

    def _process(self, pending: _Pending, info: CameraInfo) -> None:
        started_ns = self.get_clock().now().nanoseconds
        s = self._settings
        msg = pending.msg
        rgb = self._decode(msg, s)
        height, width = rgb.shape[:2]
        camera = self._camera_for(info, msg, width, height)
        try:
            rectified = rectified_camera_from_info(info)
            result = self.pipeline.process(rgb, camera, self._take_reference(), rectified)
        except CameraModelError as exc:
            raise FrameRejected(self.info_topic, "cannot rectify", str(exc)) from exc
        handed_ns = self.get_clock().now().nanoseconds
        self._outgoing.put(_Outgoing(msg.header, result, s, pending, started_ns, handed_ns))

    def _publish_frame(self, out: _Outgoing) -> None:
        self._publish(out.header, out.result, out.settings)
        done_ns = self.get_clock().now().nanoseconds
        p = out.pending
        stages = {  # LATENCY_STAGES
            "arrival": (p.received_ns - p.stamp_ns) / 1e6,
            "wait": (out.started_ns - p.received_ns) / 1e6,
            "network": (out.handed_ns - out.started_ns) / 1e6,
            "publish": (done_ns - out.handed_ns) / 1e6,
        }
        latency = (done_ns - p.stamp_ns) / 1e9
        self._stats.frame_published(latency, out.result.timings.inference_ms, stages)

    def _take_reference(self) -> ScaleReference | None:
        """Take the newest metric references (sparse scale mode): each serves one frame."""
        with self._cond:
            points, self._ref_points = self._ref_points, None
            depth, self._ref_depth = self._ref_depth, None
        if points is None and depth is None:
            return None
        return ScaleReference(points, depth)

    def _publish(self, header: Any, result: FrameResult, s: NodeSettings) -> None:
        if s.publish_depth:
            self._depth_pub.publish(depth_to_image_msg(result.depth, header))
        if s.publish_camera_info:
            self._info_pub.publish(camera_to_info_msg(result.camera, header))
        if s.publish_points:
            self._points_pub.publish(cloud_to_msg(self.pipeline.cloud(result), header))

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        e, s = self.engine, self._settings
        status = build_status(
            name=f"{self.get_name()}: depth estimation",
            hardware_id=str(e.device),
            stats=self._stats.snapshot(),
            info={
                "model": s.model,
                "backend": str(e.backend),
                "device": str(e.device),
                "precision": str(e.precision),
                "image_topic": self.image_topic,
                **self._pairing_and_loss_values(s),
            },
            camera_info_topic=self.info_topic,
            faults=self._faults.counts(),
            last_fault=self._faults.last_fault,
        )
        if self.pipeline.scaler is not None:
            state = self.pipeline.scaler.state
            status.values.extend(
                KeyValue(key=k, value=v) for k, v in scale_values(state).items()
            )
            if state.scale is None and status.level == DiagnosticStatus.OK:
                status.level = DiagnosticStatus.WARN
                status.message = (
                    f"no metric scale yet (scale_mode {state.mode}): depth is NaN until "
                    + (
                        f"'{self._scale_points_sub.topic_name}' or "
                        f"'{self._scale_depth_sub.topic_name}' give enough measurements"
                        if state.mode == "sparse"
                        else "the floor is found"
                    )
                )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _pairing_and_loss_values(self, s: NodeSettings) -> dict[str, str]:
        with self._cond:
            counts = self._pairer.counts()
            lost, period = self._gaps.lost, self._gaps.period_ns
        return {
            **pairing_values(s.camera_info_policy, counts),
            **loss_values(lost, period, self._lost_by_middleware),
        }

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        # rclpy's context clean-up also calls this on a node whose __init__ stopped half-way
        # (bad model, or a signal during start-up): only stop what was started.
        if hasattr(self, "_worker"):
            self._stop.set()
            self._outgoing.close()
            with self._cond:
                self._cond.notify_all()
            for thread in (self._worker, self._publisher):
                if thread.is_alive() and threading.current_thread() is not thread:
                    thread.join(timeout=5.0)
        super().destroy_node()
