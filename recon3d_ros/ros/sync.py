"""Stamps: pairing images with CameraInfo, the stream's timeline, frames lost on the way.

No rclpy here (the node wraps these in its lock); CameraInfo messages are read by attribute.

* :class:`CameraInfoPairer` decides which CameraInfo describes an image (policy below).
* :class:`StampTimeline` decides whether a stamp continues a stream (invalid stamps, outliers,
  source restarts).
* :class:`GapCounter` counts the frames missing from the stamps of a steady camera: frames lost
  in DDS or the subscription's queue before the node saw them.

Pairing policy (``stamped``, the default): drivers publish ``image`` and ``camera_info`` with the
same stamp but in either order, a few ms apart, and DDS delivers the odd CameraInfo late.

1. The CameraInfo with the image's exact stamp wins.
2. While it may still come, the image waits for it, at most ``wait_s`` (the wait spans images
   that replace each other, so a stream without CameraInfo is reported rather than starved). It
   cannot come any more once a CameraInfo newer than the image has arrived (one publisher's
   messages arrive in order), so a lost CameraInfo costs about one frame period, not ``wait_s``.
   A driver that never stamps the two alike (seen from the recent pairings) is not waited for.
3. Otherwise the nearest CameraInfo within the tolerance is used, but only if it describes the
   same calibration (:func:`calibration_of`) as the newest CameraInfo: a neighbour's stamp is
   trusted only while the calibration is not changing.
4. Otherwise the image is given up, with the reason.

``latched``: the camera publishes one CameraInfo (or rarely), so every image uses the newest
CameraInfo whatever its stamp (an exact stamp still wins).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, TypeVar

from recon3d_ros.errors import ConfigError

__all__ = [
    "CAMERA_INFO_POLICIES",
    "FUTURE_LIMIT_NS",
    "CameraInfoBuffer",
    "CameraInfoPairer",
    "GapCounter",
    "Paired",
    "PairingCounts",
    "StampTimeline",
    "StampVerdict",
    "Unpaired",
    "calibration_of",
    "invalid_stamp",
]

T = TypeVar("T")

#: ``stamped``: pair by stamp (exact, else same-calibration nearest); ``latched``: newest.
CAMERA_INFO_POLICIES = ("stamped", "latched")
NS_PER_S = 1_000_000_000
#: A stamp this far ahead of both the node's clock and the stream is an outlier (until it
#: persists): no camera takes pictures in the future, and NTP-synchronised hosts agree to ms.
FUTURE_LIMIT_NS = NS_PER_S
#: Pairings remembered to learn whether this driver stamps CameraInfo like its images.
_PAIRING_HISTORY = 32


def invalid_stamp(sec: int, nanosec: int) -> str | None:
    """Return why ``sec``/``nanosec`` is not a valid builtin_interfaces/Time, or None."""
    if not 0 <= nanosec < NS_PER_S:
        return (
            f"nanosec = {nanosec} is outside [0, 999999999] (a stamp is sec + nanosec / 1e9 "
            "with nanosec below one second); fix how the driver fills header.stamp"
        )
    if sec < 0:
        return f"sec = {sec} is negative; fix how the driver fills header.stamp"
    return None


# ------------------------------------------------------------------------------ timeline
@dataclass(frozen=True)
class StampVerdict:
    """Whether a stamp continues the timeline; ``restarted`` when it starts a new one."""

    accepted: bool
    restarted: bool = False
    cause: str = ""
    detail: str = ""


class StampTimeline:
    """The timeline of one stream: newest frame wins, so stamps must not go backwards.

    A stamp older than the last accepted one, or more than ``future_limit_ns`` ahead of both it
    and the node's clock, breaks the timeline and is rejected. A single such outlier changes
    nothing: the next normal stamp is accepted as if it had not been there. When the break
    persists, i.e. the next stamp is not back on the old timeline but continues from the
    rejected one (a bag looping, a simulator reset, a clock step), the timeline moves there:
    the source is served again from its second frame.
    """

    def __init__(self, future_limit_ns: int = FUTURE_LIMIT_NS) -> None:
        self.future_limit_ns = future_limit_ns
        self.last: int | None = None
        self._candidate: int | None = None

    def check(self, stamp_ns: int, now_ns: int) -> StampVerdict:
        """Judge ``stamp_ns`` given the node's clock ``now_ns`` (0 when unknown, sim time)."""
        last = self.last
        reference = max(last or 0, now_ns)
        future = reference > 0 and stamp_ns > reference + self.future_limit_ns
        backwards = last is not None and stamp_ns < last
        if not future and not backwards:
            self.last, self._candidate = stamp_ns, None
            return StampVerdict(True)
        if self._candidate is not None and stamp_ns >= self._candidate:
            self.last, self._candidate = stamp_ns, None
            return StampVerdict(True, restarted=True)
        self._candidate = stamp_ns
        if backwards:
            return StampVerdict(
                False,
                cause="stamp went backwards",
                detail=f"stamp {stamp_ns / 1e9:.6f} s is older than the previous one, "
                f"{(last or 0) / 1e9:.6f} s (if the source restarted, its next message is used)",
            )
        return StampVerdict(
            False,
            cause="stamp in the future",
            detail=f"stamp {stamp_ns / 1e9:.6f} s is {(stamp_ns - reference) / 1e9:.3f} s ahead "
            "of this node's clock and the stream; check the driver's stamps, clock "
            "synchronisation (NTP/PTP) and use_sim_time",
        )


# ------------------------------------------------------------------------------ loss
class GapCounter:
    """Frames missing from a steady stream's stamps (lost before the node saw them).

    The period is estimated from the recent intervals between stamps (the median of those
    near the 10th percentile, so gaps do not inflate it even when most frames are lost). Once
    at least ``min_intervals`` intervals are known and nearly all are whole multiples of the
    period (a steady camera), an interval of k periods counts k - 1 missing frames, less the
    frames that did arrive but were rejected for their stamp. Intervals longer than
    ``max_gap`` periods are pauses of the source, not loss.
    """

    def __init__(
        self,
        window: int = 64,
        min_intervals: int = 8,
        jitter: float = 0.25,
        steady_fraction: float = 0.9,
        max_gap: int = 50,
    ) -> None:
        self._intervals: deque[int] = deque(maxlen=window)
        self.min_intervals = min_intervals
        self.jitter = jitter
        self.steady_fraction = steady_fraction
        self.max_gap = max_gap
        self.lost = 0
        self.period_ns: int | None = None
        self._last: int | None = None
        self._rejected_since = 0
        self._until_estimate = 0

    def restart(self) -> None:
        """Forget the timeline (the source restarted); the count so far is kept."""
        self._intervals.clear()
        self._last, self.period_ns, self._rejected_since = None, None, 0
        self._until_estimate = 0

    def note_rejected(self) -> None:
        """Note a frame that arrived but was not added (bad stamp): it is not missing."""
        self._rejected_since += 1

    def add(self, stamp_ns: int) -> int:
        """Add the stamp of an accepted frame; returns the frames found missing before it."""
        last, self._last = self._last, stamp_ns
        rejected, self._rejected_since = self._rejected_since, 0
        if last is None or stamp_ns <= last:
            return 0
        interval = stamp_ns - last
        self._intervals.append(interval)
        self._until_estimate -= 1
        if self.period_ns is None or self._until_estimate <= 0:
            self.period_ns = self._estimate()
            self._until_estimate = 8  # the estimate moves slowly: refresh it every 8 frames
        period = self.period_ns
        if period is None:
            return 0
        k = round(interval / period)
        if k < 2 or k > self.max_gap or abs(interval - k * period) > self.jitter * period:
            return 0
        missing = max(0, k - 1 - rejected)
        self.lost += missing
        return missing

    def _estimate(self) -> int | None:
        if len(self._intervals) < self.min_intervals:
            return None
        ordered = sorted(self._intervals)
        low = ordered[len(ordered) // 10]
        core = [d for d in ordered if abs(d - low) <= self.jitter * low]
        period = core[len(core) // 2]
        if period <= 0:
            return None
        whole = sum(
            1
            for d in ordered
            if abs(d - max(1, round(d / period)) * period) <= self.jitter * period
        )
        return period if whole >= self.steady_fraction * len(ordered) else None


# ------------------------------------------------------------------------------ pairing
def calibration_of(info: Any) -> Hashable:
    """Return what makes two CameraInfo messages one calibration (all but the stamp)."""
    roi = info.roi
    return (
        str(info.header.frame_id),
        int(info.width),
        int(info.height),
        str(info.distortion_model),
        tuple(float(v) for v in info.d),
        tuple(float(v) for v in info.k),
        tuple(float(v) for v in info.r),
        tuple(float(v) for v in info.p),
        int(info.binning_x),
        int(info.binning_y),
        (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height),
         bool(roi.do_rectify)),
    )


@dataclass(frozen=True)
class _Entry(Generic[T]):
    stamp: int
    info: T
    key: Hashable


class CameraInfoBuffer(Generic[T]):
    """The last ``capacity`` CameraInfo messages, keyed by stamp in nanoseconds."""

    def __init__(
        self, capacity: int = 30, calibration: Callable[[T], Hashable] | None = None
    ) -> None:
        self._items: deque[_Entry[T]] = deque(maxlen=capacity)
        self._calibration = calibration

    def __len__(self) -> int:
        return len(self._items)

    @property
    def newest_stamp(self) -> int | None:
        return self._items[-1].stamp if self._items else None

    @property
    def newest(self) -> _Entry[T] | None:
        return self._items[-1] if self._items else None

    def add(self, stamp_ns: int, info: T) -> bool:
        """Store ``info``; returns True when its stamp went backwards (the buffer is reset then).

        A stamp older than the newest one means the source restarted (a bag looping, a
        simulator reset): the stored messages belong to the old timeline and are dropped.
        """
        went_back = bool(self._items) and stamp_ns < self._items[-1].stamp
        if went_back:
            self._items.clear()
        key = self._calibration(info) if self._calibration is not None else id(info)
        entry = _Entry(stamp_ns, info, key)
        if self._items and self._items[-1].stamp == stamp_ns:
            self._items[-1] = entry
        else:
            self._items.append(entry)
        return went_back

    def exact(self, stamp_ns: int) -> _Entry[T] | None:
        for entry in reversed(self._items):
            if entry.stamp == stamp_ns:
                return entry
            if entry.stamp < stamp_ns:
                return None
        return None

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> _Entry[T] | None:
        """Return the entry nearest ``stamp_ns`` within ``tolerance_ns`` (the newer on a tie)."""
        best: _Entry[T] | None = None
        best_gap = tolerance_ns + 1
        for entry in reversed(self._items):
            gap = abs(entry.stamp - stamp_ns)
            if gap < best_gap:
                best, best_gap = entry, gap
        return best

    def match(self, stamp_ns: int, tolerance_ns: int) -> T | None:
        """Return the message with ``stamp_ns``, else the nearest one within ``tolerance_ns``."""
        entry = self.exact(stamp_ns) or self.nearest(stamp_ns, tolerance_ns)
        return entry.info if entry is not None else None

    def discard_newer_than(self, stamp_ns: int) -> int:
        """Drop the entries stamped after ``stamp_ns``; returns how many.

        When the image stream restarts on an earlier timeline before its CameraInfo stream
        does, the stored CameraInfos belong to the old timeline: left there, they would make
        the restarted image look as if its own CameraInfo had been skipped.
        """
        dropped = 0
        while self._items and self._items[-1].stamp > stamp_ns:
            self._items.pop()
            dropped += 1
        return dropped

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True)
class Paired(Generic[T]):
    """The CameraInfo for an image; ``kind`` is exact, nearest or latched."""

    info: T
    kind: str
    waited_s: float  # how long this image waited for it


@dataclass(frozen=True)
class Unpaired:
    """An image given up for want of a CameraInfo; ``cause`` is one of the CAUSE_* texts."""

    cause: str
    waited_s: float  # since the first of the images that replaced each other while waiting
    newest_stamp: int | None
    nearest_gap_ns: int | None = None


@dataclass(frozen=True)
class PairingCounts:
    """How images were paired so far (shown in /diagnostics)."""

    exact: int
    nearest: int
    latched: int
    waited: int  # served after waiting for their CameraInfo
    unpaired: int  # given up: no CameraInfo, none near enough, or the calibration was changing
    max_wait_s: float  # longest wait of a served image among the recent ones


class CameraInfoPairer(Generic[T]):
    """Pairs the newest image with its CameraInfo by the module's policy (caller locks)."""

    CAUSE_NONE = "no camera_info"
    CAUSE_NO_MATCH = "no camera_info with a matching stamp"
    CAUSE_CHANGING = "camera_info changed near this image"

    def __init__(
        self,
        policy: str = "stamped",
        calibration: Callable[[T], Hashable] = calibration_of,
        capacity: int = 30,
    ) -> None:
        if policy not in CAMERA_INFO_POLICIES:
            raise ConfigError(
                f"unknown camera_info_policy {policy!r}; choose one of "
                f"{list(CAMERA_INFO_POLICIES)}"
            )
        self.policy = policy
        self.buffer: CameraInfoBuffer[T] = CameraInfoBuffer(capacity, calibration)
        self._recent_exact: deque[bool] = deque(maxlen=_PAIRING_HISTORY)
        self._recent_waits: deque[float] = deque(maxlen=100)
        self._since: float | None = None  # the current wait started (spans replaced images)
        self._image: tuple[int, float] | None = None  # (stamp, first attempt) of this image
        self._counts = {"exact": 0, "nearest": 0, "latched": 0, "waited": 0, "unpaired": 0}

    def add(self, stamp_ns: int, info: T) -> bool:
        """Store a CameraInfo; True when its stamp went backwards (the older ones are gone)."""
        return self.buffer.add(stamp_ns, info)

    def expects_exact(self) -> bool:
        """Whether this driver stamps CameraInfo like its images (worth waiting for)."""
        recent = self._recent_exact
        return not recent or 2 * sum(recent) >= len(recent)

    def pair(
        self, stamp_ns: int, now_s: float, tolerance_ns: int, wait_s: float
    ) -> Paired[T] | Unpaired | None:
        """Pair the image stamped ``stamp_ns``; None means wait (call again when woken)."""
        if self._since is None:
            self._since = now_s
        if self._image is None or self._image[0] != stamp_ns:
            self._image = (stamp_ns, now_s)
        waited = now_s - self._since
        exact = self.buffer.exact(stamp_ns)
        if exact is not None:
            return self._serve(exact.info, "exact", now_s)
        newest = self.buffer.newest
        if self.policy == "latched":
            if newest is not None:
                return self._serve(newest.info, "latched", now_s)
            return None if waited < wait_s else self._give_up(self.CAUSE_NONE, waited, None)
        # No CameraInfo newer than the image will be nearer than the newest one already here,
        # and the exact one cannot come after it: the decision is final.
        final = waited >= wait_s or (newest is not None and newest.stamp > stamp_ns)
        near = self.buffer.nearest(stamp_ns, tolerance_ns)
        same = near is not None and newest is not None and near.key == newest.key
        if not final and (self.expects_exact() or not same):
            return None
        if near is not None and same:
            return self._serve(near.info, "nearest", now_s)
        if newest is None:
            return self._give_up(self.CAUSE_NONE, waited, None)
        if near is not None:
            return self._give_up(
                self.CAUSE_CHANGING, waited, newest.stamp, abs(near.stamp - stamp_ns)
            )
        return self._give_up(self.CAUSE_NO_MATCH, waited, newest.stamp)

    def _serve(self, info: T, kind: str, now_s: float) -> Paired[T]:
        waited = now_s - (self._image[1] if self._image is not None else now_s)
        self._since = self._image = None
        self._counts[kind] += 1
        if waited > 0.0:
            self._counts["waited"] += 1
        self._recent_waits.append(waited)
        if kind != "latched":
            self._recent_exact.append(kind == "exact")
        return Paired(info, kind, waited)

    def _give_up(
        self, cause: str, waited: float, newest: int | None, gap: int | None = None
    ) -> Unpaired:
        self._since = self._image = None
        self._counts["unpaired"] += 1
        return Unpaired(cause, waited, newest, gap)

    def counts(self) -> PairingCounts:
        c = self._counts
        return PairingCounts(
            exact=c["exact"],
            nearest=c["nearest"],
            latched=c["latched"],
            waited=c["waited"],
            unpaired=c["unpaired"],
            max_wait_s=max(self._recent_waits, default=0.0),
        )
