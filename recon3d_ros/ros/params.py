"""Every parameter of the depth node, declared in one place.

Each :class:`ParamSpec` carries the default, a description, a numeric range (enforced by rclpy
through the ``ParameterDescriptor``), allowed string values (checked here) and whether it may
change at run time. Parameters that would need a new model, new subscriptions or new publishers
are ``read_only``; the rest (what to publish, cloud options, depth limits, edge filter, pairing
tolerance and wait) are applied to the next frame by the node's on-set-parameters callback.

:func:`settings_from_values` turns a name -> value mapping into an immutable
:class:`NodeSettings`, checking constraints that span parameters (``min_depth < max_depth``).
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, fields, make_dataclass
from typing import Any, Mapping, Sequence, Union

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.devices import PRECISIONS
from recon3d_ros.inference.engine import BACKENDS
from recon3d_ros.inference.loader import load_engine
from recon3d_ros.inference.pipeline import FrameOptions, FramePipeline
from recon3d_ros.inference.scale import SCALE_MODES, MetricScaler
from recon3d_ros.ros.qos import DURABILITY_CHOICES, RELIABILITY_CHOICES
from recon3d_ros.ros.sync import CAMERA_INFO_POLICIES

__all__ = [
    "ParamSpec",
    "PARAMS",
    "NodeSettings",
    "settings_from_values",
    "descriptor_for",
    "declare_all",
    "check_values",
    "declare_values",
]

Value = Union[str, int, float, bool, "list[float]"]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Value
    description: str
    read_only: bool = True
    value_range: tuple[float, float] | None = None
    choices: Sequence[str] | None = None


BACKEND_CHOICES = ("auto",) + tuple(BACKENDS)
PRECISION_CHOICES = tuple(PRECISIONS)
TRANSPORT_CHOICES = ("raw", "compressed")
RELIABILITY = tuple(RELIABILITY_CHOICES)
DURABILITY = tuple(DURABILITY_CHOICES)
IDENTITY_4X4 = [1.0 if r == c else 0.0 for r in range(4) for c in range(4)]

PARAMS: tuple[ParamSpec, ...] = (
    # ---------------------------------------------------------------- model
    ParamSpec(
        "model",
        "default",
        "Depth model: a preset name (e.g. 'default') or a file path (.pt/.ts TorchScript or "
        "checkpoint, .onnx, .engine). A file's ModelConfig comes from its sidecar YAML.",
    ),
    ParamSpec(
        "preset",
        "",
        "Preset whose pre/post-processing describes the 'model' file (e.g. "
        "'depth_anything_v2_small_dynamic'); '' = none. Precedence: node parameters > sidecar "
        "YAML > preset > the file's own metadata (recon3d models lists the presets).",
    ),
    ParamSpec(
        "backend",
        "auto",
        "Inference backend; 'auto' picks from the model file's suffix.",
        choices=BACKEND_CHOICES,
    ),
    ParamSpec(
        "device", "auto", "Inference device: 'auto' (GPU when available), 'cpu', 'cuda', 'cuda:1'."
    ),
    ParamSpec("precision", "fp32", "Numeric precision of the network.", choices=PRECISION_CHOICES),
    ParamSpec(
        "cpu_threads",
        0,
        "CPU threads of the backend (torch.set_num_threads, onnxruntime intra_op_num_threads); "
        "0 = the backend's default. 1 is often fastest on a busy or small CPU.",
        value_range=(0, 64),
    ),
    ParamSpec(
        "input_width",
        0,
        "Network input width in pixels; 0 keeps the model's own.",
        value_range=(0, 8192),
    ),
    ParamSpec(
        "input_height",
        0,
        "Network input height in pixels; 0 keeps the model's own.",
        value_range=(0, 8192),
    ),
    # ---------------------------------------------------------------- input
    ParamSpec(
        "transport",
        "raw",
        "Image input: 'raw' subscribes 'image' (sensor_msgs/Image); 'compressed' subscribes "
        "'image/compressed' (sensor_msgs/CompressedImage, jpeg or png).",
        choices=TRANSPORT_CHOICES,
    ),
    ParamSpec(
        "input_is_rectified",
        False,
        "True when 'image' is already undistorted (image_rect); otherwise images with a "
        "non-zero CameraInfo distortion are rectified before inference.",
    ),
    ParamSpec(
        "camera_info_policy",
        "stamped",
        "How images find their CameraInfo: 'stamped' pairs each image with the CameraInfo of "
        "its stamp (else the nearest within camera_info_tolerance, only while the calibration "
        "is not changing); 'latched' uses the newest CameraInfo for every image, for a camera "
        "that publishes it once (subscribed reliable + transient_local).",
        choices=CAMERA_INFO_POLICIES,
    ),
    ParamSpec(
        "camera_info_tolerance",
        0.05,
        "Largest |stamp difference| in seconds between an image and the CameraInfo paired "
        "with it when no CameraInfo has exactly the image's stamp; such a neighbour is used "
        "only if it has the newest CameraInfo's calibration.",
        read_only=False,
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "camera_info_wait",
        1.0,
        "Longest time in seconds an image waits for the CameraInfo with its stamp before the "
        "nearest one is used or the image is dropped. Waits end early once a newer "
        "CameraInfo arrives, so this bounds latency only while CameraInfo is late or missing.",
        read_only=False,
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "max_input_pixels",
        33_177_600,
        "Images with more pixels (width x height) are rejected; the default allows 8K.",
        value_range=(1, 1_000_000_000),
    ),
    ParamSpec(
        "input_qos_reliability",
        "best_effort",
        "Reliability of the image/camera_info subscriptions.",
        choices=RELIABILITY,
    ),
    ParamSpec(
        "input_qos_depth", 5, "History depth of the input subscriptions.", value_range=(1, 100)
    ),
    # ---------------------------------------------------------------- output
    ParamSpec(
        "output_width",
        0,
        "Width of the published depth; 0 = input width x output_scale. Set with output_height.",
        value_range=(0, 8192),
    ),
    ParamSpec(
        "output_height",
        0,
        "Height of the published depth; 0 = input height x output_scale.",
        value_range=(0, 8192),
    ),
    ParamSpec(
        "output_scale",
        1.0,
        "Scale of the published depth relative to the input image when output_width/height are 0.",
        value_range=(0.05, 4.0),
    ),
    ParamSpec(
        "publish_depth",
        True,
        "Publish 'depth/image' (32FC1, metres along z, NaN invalid).",
        read_only=False,
    ),
    ParamSpec(
        "publish_camera_info",
        True,
        "Publish 'depth/camera_info' (intrinsics of the depth image).",
        read_only=False,
    ),
    ParamSpec(
        "publish_points",
        True,
        "Publish 'points' (organized sensor_msgs/PointCloud2).",
        read_only=False,
    ),
    ParamSpec(
        "cloud_color",
        True,
        "Add an 'rgb' field to 'points' (xyzrgb instead of xyz).",
        read_only=False,
    ),
    ParamSpec(
        "cloud_stride",
        1,
        "Keep every n-th pixel in each direction in 'points'.",
        read_only=False,
        value_range=(1, 64),
    ),
    ParamSpec(
        "min_depth",
        0.0,
        "Depth below this (metres) is set to NaN in 'depth/image' and 'points' (0 = no limit).",
        read_only=False,
        value_range=(0.0, 10000.0),
    ),
    ParamSpec(
        "max_depth",
        100.0,
        "Depth above this (metres) is set to NaN in 'depth/image' and 'points'.",
        read_only=False,
        value_range=(0.001, 10000.0),
    ),
    ParamSpec(
        "edge_filter_threshold",
        0.0,
        "Flying-pixel filter: NaN on both sides of a relative depth jump |d1-d2|/min(d1,d2) "
        "above this between neighbours (e.g. 0.05 = 5 %); 0 disables it.",
        read_only=False,
        value_range=(0.0, 100.0),
    ),
    ParamSpec(
        "output_qos_reliability",
        "reliable",
        "Reliability of the published topics.",
        choices=RELIABILITY,
    ),
    ParamSpec(
        "output_qos_durability",
        "volatile",
        "Durability of the published topics.",
        choices=DURABILITY,
    ),
    ParamSpec(
        "output_qos_depth", 5, "History depth of the published topics.", value_range=(1, 100)
    ),
    # ---------------------------------------------------------------- metric scale
    ParamSpec(
        "scale_mode",
        "none",
        "Metric scale of the network output (for relative models): 'none' publishes it as is; "
        "'fixed' applies scale_factor/scale_shift in disparity; 'sparse' fits them to "
        "'scale/points' or 'scale/depth'; 'ground' uses scale_camera_height.",
        choices=SCALE_MODES,
    ),
    ParamSpec(
        "scale_factor",
        1.0,
        "Fixed mode: metric disparity = scale_factor * relative disparity + scale_shift.",
        value_range=(1e-6, 1e6),
    ),
    ParamSpec(
        "scale_shift",
        0.0,
        "Fixed mode: shift added to the scaled disparity (1/m).",
        value_range=(-1000.0, 1000.0),
    ),
    ParamSpec(
        "scale_camera_height",
        0.0,
        "Ground mode: height of the camera above the floor in metres (must be > 0 there).",
        value_range=(0.0, 100.0),
    ),
    ParamSpec(
        "scale_extrinsic",
        IDENTITY_4X4,
        "Sparse mode: 4x4 transform (16 doubles, row-major) from the 'scale/points' frame to "
        "the camera optical frame; [] or identity when the points are already in it.",
    ),
    ParamSpec(
        "scale_smoothing",
        0.2,
        "EMA weight of a new scale estimate (1 = no smoothing).",
        value_range=(0.01, 1.0),
    ),
    ParamSpec(
        "scale_max_jump",
        0.25,
        "Largest |log| change of the scale accepted at once; bigger jumps must persist.",
        value_range=(0.01, 10.0),
    ),
    ParamSpec(
        "scale_patience",
        5,
        "Consecutive agreeing estimates after which a scale jump is accepted.",
        value_range=(1, 1000),
    ),
    ParamSpec(
        "scale_min_points",
        20,
        "Fewest valid reference measurements for a scale estimate.",
        value_range=(2, 1_000_000),
    ),
    ParamSpec(
        "scale_only",
        False,
        "Fit a scale only (no shift); needed when the network output is nearly constant.",
    ),
    ParamSpec(
        "diagnostics_period",
        1.0,
        "Seconds between /diagnostics messages.",
        value_range=(0.1, 60.0),
    ),
)

_TYPE_NAMES = {
    bool: "bool (true/false)",
    int: "integer",
    float: "double (written with a decimal point, e.g. 1.0)",
    str: "string",
    list: "array of doubles (e.g. [1.0, 0.0, ...])",
}


class _SettingsBase:
    """Methods of :data:`NodeSettings`; its fields are made from :data:`PARAMS`."""

    def config_overrides(self) -> dict[str, Any]:
        """Return the ModelConfig fields the parameters override (0 = keep the model's)."""
        out: dict[str, Any] = {}
        for name in ("input_width", "input_height"):
            if getattr(self, name) > 0:
                out[name] = getattr(self, name)
        return out

    def frame_options(self) -> FrameOptions:
        """Return the options of the shared frame path (:mod:`recon3d_ros.inference.pipeline`)."""
        return FrameOptions(
            **{f.name: getattr(self, f.name) for f in fields(FrameOptions)}
        )

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Return the published depth size for an input of ``width`` x ``height``."""
        return self.frame_options().output_size(width, height)

    def build_pipeline(self) -> FramePipeline:
        """Load the model these settings name and wrap it in the node's frame path.

        The node and ``recon3d bench`` both build their pipeline here, so they run the same
        model with the same options.
        """
        engine = load_engine(
            getattr(self, "model"),
            backend=getattr(self, "backend"),
            device=getattr(self, "device"),
            precision=getattr(self, "precision"),
            config_overrides=self.config_overrides() or None,
            preset=getattr(self, "preset") or None,
            cpu_threads=getattr(self, "cpu_threads"),
        )  # loads the network too
        return FramePipeline(engine, self.frame_options(), self.make_scaler())

    def make_scaler(self) -> MetricScaler | None:
        """Build the metric scaler ``scale_mode`` asks for (None for ``none``)."""
        if getattr(self, "scale_mode") == "none":
            return None
        return MetricScaler(
            getattr(self, "scale_mode"),
            scale=getattr(self, "scale_factor"),
            shift=getattr(self, "scale_shift"),
            camera_height=getattr(self, "scale_camera_height"),
            extrinsic=getattr(self, "scale_extrinsic"),
            smoothing=getattr(self, "scale_smoothing"),
            max_log_jump=getattr(self, "scale_max_jump"),
            patience=getattr(self, "scale_patience"),
            min_points=getattr(self, "scale_min_points"),
            scale_only=getattr(self, "scale_only"),
        )

    def as_dict(self) -> dict[str, Value]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


def _field_type(spec: ParamSpec) -> type:
    # A double array arrives as a list and is kept as a tuple (settings are immutable).
    return tuple if isinstance(spec.default, list) else type(spec.default)


#: Validated parameter values, one field per :data:`PARAMS` entry (same name and type); the
#: node swaps the whole object when one changes. Built from the table so a parameter is
#: declared in one place only.
NodeSettings: Any = make_dataclass(
    "NodeSettings",
    [(spec.name, _field_type(spec)) for spec in PARAMS],
    bases=(_SettingsBase,),
    frozen=True,
)
NodeSettings.__module__ = __name__  # make_dataclass's ``module=`` needs Python 3.12


def descriptor_for(spec: ParamSpec) -> ParameterDescriptor:
    """Build the ROS descriptor: description, type, range and read-only flag."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if isinstance(spec.default, bool):
        desc.type = ParameterType.PARAMETER_BOOL
    elif isinstance(spec.default, int):
        desc.type = ParameterType.PARAMETER_INTEGER
        if spec.value_range is not None:
            desc.integer_range = [
                IntegerRange(
                    from_value=int(spec.value_range[0]), to_value=int(spec.value_range[1]), step=1
                )
            ]
    elif isinstance(spec.default, float):
        desc.type = ParameterType.PARAMETER_DOUBLE
        if spec.value_range is not None:
            desc.floating_point_range = [
                FloatingPointRange(
                    from_value=float(spec.value_range[0]),
                    to_value=float(spec.value_range[1]),
                    step=0.0,
                )
            ]
    elif isinstance(spec.default, list):
        desc.type = ParameterType.PARAMETER_DOUBLE_ARRAY
    else:
        desc.type = ParameterType.PARAMETER_STRING
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if not spec.read_only:
        desc.additional_constraints = (
            desc.additional_constraints + "; " if desc.additional_constraints else ""
        ) + "can change at run time"
    return desc


def _check(spec: ParamSpec, value: Any) -> Value:
    """Type, range and choice check of one value (rclpy checks too; this covers YAML/tests)."""
    expected = type(spec.default)
    if expected is list:
        return _check_matrix(spec, value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise ConfigError(
            f"parameter '{spec.name}' must be a {expected.__name__}, got {value!r}; "
            f"write e.g. {spec.name}: {spec.default!r}"
        )
    if spec.value_range is not None:
        lo, hi = spec.value_range
        if not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
            raise ConfigError(f"parameter '{spec.name}' = {value} is outside [{lo}, {hi}]")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(
            f"parameter '{spec.name}' = {value!r} is not one of {list(spec.choices)}"
        )
    return value


def _check_matrix(spec: ParamSpec, value: Any) -> tuple[float, ...]:
    """Check a 4x4 row-major transform: 16 finite numbers, last row 0 0 0 1; empty = identity."""
    if value is None:
        return tuple(IDENTITY_4X4)  # an empty list in a params file arrives as "not set"
    items = list(value) if isinstance(value, (list, tuple, array.array)) else None
    if items is not None and not items:
        return tuple(IDENTITY_4X4)
    numbers = [
        float(v) for v in items or () if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if items is None or len(numbers) != 16 or len(items) != 16:
        raise ConfigError(
            f"parameter '{spec.name}' must be 16 numbers (a 4x4 row-major transform) or [], "
            f"got {value!r}"
        )
    if not all(math.isfinite(v) for v in numbers):
        raise ConfigError(f"parameter '{spec.name}' has non-finite values: {numbers}")
    if any(abs(a - b) > 1e-6 for a, b in zip(numbers[12:], (0.0, 0.0, 0.0, 1.0))):
        raise ConfigError(
            f"parameter '{spec.name}' must end with the row 0 0 0 1 (row-major 4x4), got "
            f"{numbers[12:]}; was it written column-major?"
        )
    return tuple(numbers)


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Validate ``values`` (missing names take their defaults) into :class:`NodeSettings`."""
    checked = check_values(PARAMS, values)
    if not str(checked["model"]).strip():
        raise ConfigError(
            "parameter 'model' is empty: give a preset name such as 'default' or a model file"
        )
    if checked["scale_mode"] == "ground" and not checked["scale_camera_height"] > 0.0:
        raise ConfigError(
            "scale_mode 'ground' needs scale_camera_height > 0 (metres above the floor)"
        )
    settings = NodeSettings(**checked)
    settings.frame_options()  # cross-checks the frame options (ConfigError)
    return settings


def check_values(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> dict[str, Value]:
    """Type-, range- and choice-check ``values`` against ``specs``; missing names get defaults.

    Shared by every node's parameter table (the depth node's :data:`PARAMS`, the fusion node's).
    """
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown parameters {unknown}; known: {sorted(by_name)}")
    return {name: _check(spec, values.get(name, spec.default)) for name, spec in by_name.items()}


def declare_values(node: Any, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare ``specs`` on ``node`` (an ``rclpy.node.Node``); return the values it got.

    Overrides of the wrong type or out of range (from ``--params-file`` / ``-p``) become a
    :class:`ConfigError` naming the parameter, so the node exits with a clear message.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values: dict[str, Any] = {}
    for spec in specs:
        try:
            default = list(spec.default) if isinstance(spec.default, list) else spec.default
            param = node.declare_parameter(spec.name, default, descriptor_for(spec))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ConfigError(
                f"parameter '{spec.name}' rejected: {exc}; "
                f"expected a {_TYPE_NAMES[type(spec.default)]}"
                + (
                    f" in [{spec.value_range[0]}, {spec.value_range[1]}]"
                    if spec.value_range
                    else ""
                )
            ) from exc
        value = param.value
        values[spec.name] = (
            list(value) if isinstance(spec.default, list) and value is not None else value
        )
    return values


def declare_all(node: Any) -> NodeSettings:
    """Declare every depth node parameter on ``node`` and return the settings."""
    return settings_from_values(declare_values(node, PARAMS))
