"""QoS profiles of the depth node's inputs and outputs, built from parameter strings.

Inputs default to REP 2003's sensor-data profile (best effort, volatile, keep last 5) so the node
matches any camera driver. Outputs default to reliable + volatile, which rviz2 and
depth_image_proc subscribe with by default (a reliable publisher also serves best-effort
subscribers; the reverse is not true).
"""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from recon3d_ros.errors import ConfigError

__all__ = ["RELIABILITY_CHOICES", "DURABILITY_CHOICES", "make_qos", "input_qos", "output_qos"]

RELIABILITY_CHOICES: dict[str, ReliabilityPolicy] = {
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
}
DURABILITY_CHOICES: dict[str, DurabilityPolicy] = {
    "volatile": DurabilityPolicy.VOLATILE,
    "transient_local": DurabilityPolicy.TRANSIENT_LOCAL,
}


def make_qos(reliability: str, durability: str, depth: int) -> QoSProfile:
    """Build a keep-last profile from names such as ``"best_effort"``, ``"volatile"``."""
    try:
        rel = RELIABILITY_CHOICES[reliability]
    except KeyError:
        raise ConfigError(
            f"unknown QoS reliability {reliability!r}; use one of {sorted(RELIABILITY_CHOICES)}"
        ) from None
    try:
        dur = DURABILITY_CHOICES[durability]
    except KeyError:
        raise ConfigError(
            f"unknown QoS durability {durability!r}; use one of {sorted(DURABILITY_CHOICES)}"
        ) from None
    if depth < 1:
        raise ConfigError(f"QoS history depth must be >= 1, got {depth}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=rel, durability=dur
    )


def input_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Camera inputs: volatile (a late joiner wants new frames, not old ones)."""
    return make_qos(reliability, "volatile", depth)


def output_qos(
    reliability: str = "reliable", durability: str = "volatile", depth: int = 5
) -> QoSProfile:
    return make_qos(reliability, durability, depth)
