"""Frame statistics, throttled fault reports and the ``/diagnostics`` status of the depth node.

:class:`FrameStats` is written by the subscription callbacks and the inference worker (from
different threads, hence the lock) and read by the diagnostics timer. :class:`FaultReporter`
logs each cause of a dropped frame once, then at most every ``throttle_s`` seconds with a count,
so a broken camera cannot flood the log.
"""

from __future__ import annotations

import threading
import time
from collections import deque
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

__all__ = [
    "RateMeter",
    "FrameStats",
    "StatsSnapshot",
    "FaultReporter",
    "build_status",
    "WARN_RATE_RATIO",
    "scale_values",
    "pairing_values",
    "loss_values",
]

#: WARN when images arrive this many times faster than depth is published.
WARN_RATE_RATIO = 2.0
#: The parts of a frame's stamp-to-publish latency, in order: ``arrival`` (image stamp to the
#: node's callback: the driver, DDS and the executor), ``wait`` (callback to the network stage
#: taking it: the previous frame still running, pairing with its CameraInfo), ``network``
#: (decode, preprocess, inference, metric depth, filters) and ``publish`` (waiting for the
#: publish stage, building and sending the messages).
LATENCY_STAGES = ("arrival", "wait", "network", "publish")


class RateMeter:
    """Events per second over a sliding window of ``window_s`` seconds (monotonic clock)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        self._expire(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class StatsSnapshot:
    input_rate_hz: float
    output_rate_hz: float
    frames_received: int
    frames_published: int
    frames_dropped: int  # superseded by a newer frame before being processed
    frames_rejected: int  # bad input, no camera_info, inference failure
    camera_infos_received: int
    camera_info_rate_hz: float
    latency_ms: Mapping[str, float]  # p50/p90/p99 of (publish time - image stamp)
    inference_ms: float
    # Median ms of each part of that latency (:data:`LATENCY_STAGES`), where recorded.
    stage_ms: Mapping[str, float] = dataclasses.field(default_factory=dict)


class FrameStats:
    """Thread-safe counters and rates of the node's frames."""

    def __init__(self, window_s: float = 5.0, latency_window: int = 300) -> None:
        self._lock = threading.Lock()
        self._in = RateMeter(window_s)
        self._out = RateMeter(window_s)
        self._info = RateMeter(window_s)
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._stages: dict[str, deque[float]] = {
            name: deque(maxlen=latency_window) for name in LATENCY_STAGES
        }
        self.frames_received = 0
        self.frames_published = 0
        self.frames_dropped = 0
        self.frames_rejected = 0
        self.camera_infos_received = 0
        self.inference_ms = 0.0

    def image_received(self) -> None:
        with self._lock:
            self.frames_received += 1
            self._in.tick(time.monotonic())

    def camera_info_received(self) -> None:
        with self._lock:
            self.camera_infos_received += 1
            self._info.tick(time.monotonic())

    def frame_dropped(self) -> None:
        with self._lock:
            self.frames_dropped += 1

    def frame_rejected(self) -> None:
        with self._lock:
            self.frames_rejected += 1

    def frame_published(
        self, latency_s: float, inference_ms: float, stages_ms: Mapping[str, float] | None = None
    ) -> None:
        """Count a published frame; ``stages_ms`` splits its latency (:data:`LATENCY_STAGES`)."""
        with self._lock:
            self.frames_published += 1
            self._out.tick(time.monotonic())
            self._latencies.append(latency_s * 1e3)
            self.inference_ms = inference_ms
            for name, value in (stages_ms or {}).items():
                self._stages[name].append(value)

    def snapshot(self) -> StatsSnapshot:
        now = time.monotonic()
        with self._lock:
            lat = np.asarray(self._latencies, dtype=np.float64)
            pct = {f"p{p}": float(np.percentile(lat, p)) for p in (50, 90, 99)} if lat.size else {}
            return StatsSnapshot(
                input_rate_hz=self._in.rate(now),
                output_rate_hz=self._out.rate(now),
                frames_received=self.frames_received,
                frames_published=self.frames_published,
                frames_dropped=self.frames_dropped,
                frames_rejected=self.frames_rejected,
                camera_infos_received=self.camera_infos_received,
                camera_info_rate_hz=self._info.rate(now),
                latency_ms=pct,
                inference_ms=self.inference_ms,
                stage_ms={
                    name: float(np.median(np.asarray(values)))
                    for name, values in self._stages.items()
                    if values
                },
            )


class FaultReporter:
    """Logs why frames are dropped: once per (topic, cause), then throttled with a count."""

    def __init__(self, log: Callable[[str], None], throttle_s: float = 10.0) -> None:
        self._log = log
        self._throttle_s = throttle_s
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._last_logged: dict[tuple[str, str], float] = {}
        self.last_fault = ""

    def report(self, topic: str, cause: str, detail: str) -> None:
        key = (topic, cause)
        now = time.monotonic()
        with self._lock:
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            last = self._last_logged.get(key)
            self.last_fault = f"{topic}: {cause}: {detail}"
            if last is not None and now - last < self._throttle_s:
                return
            self._last_logged[key] = now
        suffix = "" if count == 1 else f" ({count} frames so far)"
        self._log(f"dropping frame from '{topic}': {cause}: {detail}{suffix}")

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


def build_status(
    name: str,
    hardware_id: str,
    stats: StatsSnapshot,
    info: Mapping[str, str],
    camera_info_topic: str,
    faults: Mapping[tuple[str, str], int],
    last_fault: str = "",
) -> DiagnosticStatus:
    """Build the status: ERROR without camera_info, WARN when far behind the camera."""
    level, message = DiagnosticStatus.OK, "ok"
    if stats.camera_infos_received == 0:
        level = DiagnosticStatus.ERROR
        message = f"no camera_info received on '{camera_info_topic}'; depth cannot be computed"
    elif stats.input_rate_hz > 0 and stats.camera_info_rate_hz == 0:
        level = DiagnosticStatus.ERROR
        message = f"images arrive but '{camera_info_topic}' stopped: depth cannot be computed"
    elif stats.frames_received == 0:
        level, message = DiagnosticStatus.WARN, "no images received"
    elif stats.input_rate_hz > 0 and stats.input_rate_hz > WARN_RATE_RATIO * max(
        stats.output_rate_hz, 1e-9
    ):
        level = DiagnosticStatus.WARN
        message = (
            f"images arrive at {stats.input_rate_hz:.1f} Hz but depth is published at "
            f"{stats.output_rate_hz:.1f} Hz: frames are dropped (use a smaller input size, a "
            "faster backend or precision, or lower the camera rate)"
        )
    elif stats.frames_rejected and stats.frames_published == 0:
        level, message = DiagnosticStatus.WARN, f"every frame rejected: {last_fault}"
    values = {
        "input_rate_hz": f"{stats.input_rate_hz:.2f}",
        "output_rate_hz": f"{stats.output_rate_hz:.2f}",
        "frames_received": str(stats.frames_received),
        "frames_published": str(stats.frames_published),
        "frames_dropped": str(stats.frames_dropped),
        "frames_rejected": str(stats.frames_rejected),
        "camera_infos_received": str(stats.camera_infos_received),
        "camera_info_rate_hz": f"{stats.camera_info_rate_hz:.2f}",
        "inference_ms": f"{stats.inference_ms:.1f}",
    }
    for key in ("p50", "p90", "p99"):
        value = stats.latency_ms.get(key)
        values[f"latency_{key}_ms"] = "nan" if value is None else f"{value:.1f}"
    for stage in LATENCY_STAGES:
        if stage in stats.stage_ms:
            values[f"latency_{stage}_p50_ms"] = f"{stats.stage_ms[stage]:.1f}"
    values.update(info)
    for (topic, cause), count in sorted(faults.items()):
        values[f"rejected[{topic}: {cause}]"] = str(count)
    if last_fault:
        values["last_fault"] = last_fault
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


def scale_values(state: Any) -> dict[str, str]:
    """Return the diagnostic values of a :class:`~recon3d_ros.inference.scale.ScaleState`."""

    def number(value: float | None) -> str:
        return "nan" if value is None else f"{value:.6g}"

    return {
        "scale_mode": str(state.mode),
        "scale": number(state.scale),
        "scale_shift": number(state.shift),
        "scale_updates": str(state.updates),
        "scale_rejected": str(state.rejected),
        "scale_inliers": str(state.last_inliers),
        "scale_residual": number(state.last_residual),
    }


def pairing_values(policy: str, counts: Any) -> dict[str, str]:
    """Return the diagnostic values of :class:`~recon3d_ros.ros.sync.PairingCounts`.

    ``paired_exact`` / ``paired_nearest`` / ``paired_latched``: images served with the
    CameraInfo of their own stamp, with a neighbour of the same calibration, or with the
    latched one; ``camera_info_waited``: served after waiting for it (longest recent wait in
    ``camera_info_wait_max_ms``); ``camera_info_unpaired``: images dropped for want of one.
    """
    return {
        "camera_info_policy": policy,
        "paired_exact": str(counts.exact),
        "paired_nearest": str(counts.nearest),
        "paired_latched": str(counts.latched),
        "camera_info_waited": str(counts.waited),
        "camera_info_wait_max_ms": f"{counts.max_wait_s * 1e3:.1f}",
        "camera_info_unpaired": str(counts.unpaired),
    }


def loss_values(
    lost_from_stamps: int, period_ns: int | None, lost_by_middleware: int | None
) -> dict[str, str]:
    """Return the diagnostic values of frames lost before the node saw them.

    ``frames_lost_before_node`` counts stamps missing from a steady camera's sequence
    (``camera_period_ms`` is the estimated period, ``nan`` while the stream is not steady);
    ``image_messages_lost_middleware`` is the image subscription's message-lost event total
    (``unsupported`` where the rmw does not report it).
    """
    return {
        "frames_lost_before_node": str(lost_from_stamps),
        "camera_period_ms": "nan" if period_ns is None else f"{period_ns / 1e6:.2f}",
        "image_messages_lost_middleware": (
            "unsupported" if lost_by_middleware is None else str(lost_by_middleware)
        ),
    }
