"""Contract tests: every public preset against the upstream export and runner it names.

Each test builds a small network (random weights) with the upstream export's exact tensor
names, static or dynamic dims, output rank, opset and in-graph normalisation, saves it under the
preset's file name, and loads it as a user would: by the preset's name from
``$RECON3D_MODEL_PATH`` and by path plus preset. Upstream's pre- and post-processing is
reimplemented here from the upstream code cited in each docstring (not from the preset's
values), and the package must feed the network the same input and publish depth by the same
rule on the same output.

``FIGURES`` collects the measured differences (printed with ``pytest -s``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.errors import ConfigError, Recon3dError  # noqa: E402
from recon3d_ros.inference.loader import load_engine, resolve_model  # noqa: E402
from recon3d_ros.inference.presets import PRESETS  # noqa: E402

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
FIGURES: dict[str, float] = {}


# ----------------------------------------------------------------------------- helpers
class Body(torch.nn.Module):
    """A tiny real network: conv - relu - conv, positive output, N x 1 x h x w."""

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 1, 3, padding=1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.nn.functional.softplus(self.c2(torch.relu(self.c1(x)))) + 0.05) * self.scale


def export(
    module: torch.nn.Module,
    path: Path,
    size: tuple[int, int],
    opset: int,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (torch.zeros(1, 3, *size),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
        )
    return path


def make_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 with smooth gradients, texture and hard-edged blocks (cubic overshoots there)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack(
        [
            255 * xx / max(width - 1, 1),
            255 * yy / max(height - 1, 1),
            127 + 100 * np.sin(xx / 9.0) * np.cos(yy / 7.0),
        ],
        axis=-1,
    )
    blocks = ((xx // 23 + yy // 17) % 2 == 0)[..., None]
    img = np.where(blocks & (xx[..., None] > width / 2), 255.0 - img, img)
    img[height // 3:height // 2, width // 4:width // 3] = (255, 0, 255)
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def camera(width: int, height: int, fx: float = 500.0, fy: float = 460.0) -> PinholeCamera:
    return PinholeCamera(width, height, fx, fy, (width - 1) / 2, (height - 1) / 2)


def run_onnx(path: Path, tensor: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    feed = {session.get_inputs()[0].name: tensor.astype(dtype)}
    return [np.asarray(o, np.float32) for o in session.run(None, feed)]


def check_input(name: str, package: np.ndarray, upstream: np.ndarray, in_graph: Callable,
                tol: float) -> None:
    """Network inputs equal after the export's in-graph normalisation (``in_graph``)."""
    assert package.shape == upstream.shape, f"{name}: {package.shape} vs upstream {upstream.shape}"
    diff = float(np.max(np.abs(in_graph(package) - in_graph(upstream))))
    FIGURES[f"{name} input max abs diff (normalised units)"] = diff
    assert diff <= tol, f"{name}: network input differs from upstream's by {diff}"


def identity(x: np.ndarray) -> np.ndarray:
    return x


def imagenet(x: np.ndarray) -> np.ndarray:
    """Compute what a graph normalising 0-1 input with ImageNet mean/std computes."""
    return (x - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]


def check_depth(name: str, package: np.ndarray, upstream: np.ndarray, rtol: float) -> None:
    both = np.isfinite(upstream)
    assert np.array_equal(np.isfinite(package), both), f"{name}: invalid pixels differ"
    rel = float(np.max(np.abs(package[both] - upstream[both]) / np.abs(upstream[both])))
    FIGURES[f"{name} depth max rel diff"] = rel
    assert rel <= rtol, f"{name}: depth differs from upstream's rule by {rel:.3g} (relative)"


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "models"
    directory.mkdir()
    monkeypatch.setenv("RECON3D_MODEL_PATH", str(directory))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return directory


def load_both_ways(name: str, path: Path) -> Any:
    """Load by preset name (file in the model dir) and by path + preset; return the latter."""
    by_name = load_engine(name, device="cpu")
    assert by_name.runner.model_path == path
    return load_engine(str(path), device="cpu", preset=name)


# ----------------------------------------------------------------------------- Depth Anything V2
def dav2_image2tensor(rgb: np.ndarray, input_size: int = 518) -> np.ndarray:
    """DepthAnything/Depth-Anything-V2 depth_anything_v2/dpt.py ``image2tensor``.

    ``cvtColor(BGR2RGB) / 255.0``, then util/transform.py ``Resize(518, 518,
    keep_aspect_ratio=True, ensure_multiple_of=14, resize_method='lower_bound',
    cv2.INTER_CUBIC)`` on those floats, ``NormalizeImage(ImageNet)``, ``PrepareForNet``.
    """
    image = rgb / 255.0
    h, w = image.shape[:2]
    scale_h, scale_w = input_size / h, input_size / w
    if scale_w > scale_h:
        scale_h = scale_w
    else:
        scale_w = scale_h

    def constrain(x: float, min_val: int) -> int:
        y = int((np.round(x / 14) * 14).astype(int))
        if y < min_val:
            y = int((np.ceil(x / 14) * 14).astype(int))
        return y

    new_h, new_w = constrain(scale_h * h, input_size), constrain(scale_w * w, input_size)
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    image = (image - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)[None]


class DAv2Export(torch.nn.Module):
    """fabio-sim/Depth-Anything-ONNX depth_anything_v2/dpt.py: ``return depth[:, 0]`` (rank 3)."""

    def __init__(self, max_depth: float | None = None) -> None:
        super().__init__()
        self.body = Body(1)
        self.max_depth = max_depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = self.body(x)
        if self.max_depth is not None:
            depth = torch.sigmoid(depth) * self.max_depth
        return depth[:, 0]


def export_dav2_dynamic(path: Path, max_depth: float | None = None) -> Path:
    """fabio-sim/Depth-Anything-ONNX dynamo.py ``export -b 0 -h 0 -w 0`` (TorchScript exporter).

    ``input_names=["image"]``, ``output_names=["depth"]``, opset 17, and the same
    ``dynamic_axes`` {0: batch_size, 2: height, 3: width} for the rank-3 output too, which
    labels the output's dims oddly: the loader must not rely on them.
    """
    axes = {0: "batch_size", 2: "height", 3: "width"}
    return export(DAv2Export(max_depth), path, (140, 140), 17, ["image"], ["depth"],
                  {"image": axes, "depth": axes})


@pytest.mark.parametrize(
    "name, max_depth",
    [
        ("depth_anything_v2_small_dynamic", None),
        ("depth_anything_v2_metric_indoor_small", 20.0),
        ("depth_anything_v2_metric_outdoor_small", 80.0),
    ],
)
def test_depth_anything_v2_dynamic_exports_match_upstream(model_dir, name, max_depth):
    """DA V2 dynamic export vs DepthAnything/Depth-Anything-V2 dpt.py ``image2tensor``.

    Upstream: depth_anything_v2/dpt.py and metric_depth/depth_anything_v2/dpt.py
    (``image2tensor``: keep aspect, shorter side 518, multiple of 14, INTER_CUBIC on x / 255,
    ImageNet); export: fabio-sim/Depth-Anything-ONNX dynamo.py. Relative output is inverse
    depth (published as 1 / out); metric output is metres (metric_depth/run.py).
    """
    path = export_dav2_dynamic(model_dir / PRESETS[name].filename, max_depth)
    engine = load_both_ways(name, path)
    rgb = make_image(640, 480)
    pre = engine.config.preprocess(rgb, camera(640, 480))
    upstream = dav2_image2tensor(rgb)
    assert upstream.shape == (1, 3, 518, 686)
    check_input(name, pre.tensor, upstream, identity, 5e-4)
    # Same output, upstream's rule: on an image of the network's size nothing is resampled.
    rgb = make_image(686, 518, seed=1)
    depth = engine.infer(rgb, camera(686, 518))
    (raw,) = run_onnx(path, dav2_image2tensor(rgb))
    rule = raw[0] if max_depth else 1.0 / raw[0]
    if max_depth:
        rule = np.where(rule > max_depth, np.nan, rule)
    check_depth(name, depth, rule, 1e-4)


def test_depth_anything_v2_static_release_file_matches_upstream(model_dir):
    """The v2.0.0 release file: fabio-sim/Depth-Anything-ONNX dynamo.py at tag v2.0.0.

    ``export`` default opset 18 took ``torch.onnx.dynamo_export(model, randn(1, 3, 518, 518))``:
    static 1x3x518x518, input named by the dynamo exporter ('l_x_', per the issue's inspection of
    the released file; the output name is not recorded anywhere we could read, so an arbitrary
    non-'depth' name stands in). ``infer``: ``cv2.resize(image / 255, (518, 518),
    INTER_CUBIC)``, ImageNet.
    """
    name = "depth_anything_v2_small"
    path = export(DAv2Export(), model_dir / PRESETS[name].filename, (518, 518), 18,
                  ["l_x_"], ["mul_17"])
    engine = load_both_ways(name, path)
    assert (engine.config.input_name, engine.config.output_name) == ("l_x_", "mul_17")
    rgb = make_image(640, 480)
    pre = engine.config.preprocess(rgb, camera(640, 480))
    upstream = cv2.resize(rgb / 255.0, (518, 518), interpolation=cv2.INTER_CUBIC)
    upstream = ((upstream - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None]
    check_input(name, pre.tensor, upstream.astype(np.float32), identity, 5e-4)
    depth = engine.infer(rgb, camera(640, 480))  # the first frame runs (it used to fail here)
    assert depth.shape == (480, 640) and np.isfinite(depth).all()
    rgb = make_image(518, 518, seed=2)
    (raw,) = run_onnx(path, engine.config.preprocess(rgb, camera(518, 518)).tensor)
    check_depth(name, engine.infer(rgb, camera(518, 518)), 1.0 / raw[0], 1e-4)


def test_static_file_with_an_aspect_keeping_preset_fails_at_load_naming_the_size(model_dir):
    """A static 518x518 file cannot take keep-aspect inputs: the error comes at load, not frame 1.

    (fabio-sim/Depth-Anything-ONNX v2.0.0 release file with the dynamic export's preset.)
    """
    path = export(DAv2Export(), model_dir / "static.onnx", (518, 518), 18, ["l_x_"], ["out"])
    for extra in ({}, {"input_name": None}):  # the preset's input name, or any input
        sidecar = model_dir / "static.onnx.yaml"
        sidecar.write_text("input_name: null\n" if extra else "")
        with pytest.raises(Recon3dError) as info:
            load_engine(str(path), device="cpu", preset="depth_anything_v2_small_dynamic")
        message = str(info.value)
        assert str(path) in message and "1x3x518x518" in message
        assert "preset:=depth_anything_v2_small," in message
        assert "--preset depth_anything_v2_small)" in message
    # Explicit sizes that disagree with the static shape are refused, naming the size needed.
    with pytest.raises(ConfigError, match="518x518"):
        load_engine(str(path), device="cpu", preset="depth_anything_v2_small",
                    config_overrides={"input_width": 700})


# ----------------------------------------------------------------------------- HF onnx-community
def hf_dpt_resize_size(height: int, width: int, size: int = 518, multiple: int = 14):
    """Return DPT's resize size (huggingface/transformers image_processing_dpt.py).

    models/dpt/image_processing_dpt.py ``get_resize_output_image_size``.

    With ``keep_aspect_ratio``: "scale as little as possible" between size/h and size/w, then
    ``constrain_to_multiple_of`` (Python ``round``).
    """
    scale_height, scale_width = size / height, size / width
    if abs(1 - scale_width) < abs(1 - scale_height):
        scale_height = scale_width
    else:
        scale_width = scale_height
    return (round(scale_height * height / multiple) * multiple,
            round(scale_width * width / multiple) * multiple)


def hf_resize_bicubic(rgb: np.ndarray, height: int, width: int, pil: bool = False) -> np.ndarray:
    """Resample bicubic as DPTImageProcessorFast does, or (``pil``) as DPTImageProcessor does.

    The fast processor resizes with torchvision ``resize(antialias=True)`` (Pillow's kernel,
    a = -0.5, in floats) and rounds back to uint8; the slow one (image_transforms.py ``resize``)
    hands the uint8 image to PIL ``BICUBIC``, whose fixed-point passes round in between.
    """
    if pil:
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BICUBIC))
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]
    y = torch.nn.functional.interpolate(x, size=(height, width), mode="bicubic",
                                        antialias=True, align_corners=False)
    return np.clip(np.rint(y[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


def hf_preprocess(rgb: np.ndarray, pil: bool = False) -> np.ndarray:
    """onnx-community/depth-anything-v2-small preprocessor_config.json through DPTImageProcessor.

    Fields (as in the onnx-community DA V2 repositories' preprocessor_config.json):
    do_resize, size 518x518, keep_aspect_ratio, ensure_multiple_of 14, resample 3 (bicubic),
    do_rescale 1/255, do_normalize ImageNet mean/std, do_pad false.
    """
    h, w = hf_dpt_resize_size(*rgb.shape[:2])
    image = hf_resize_bicubic(rgb, h, w, pil).astype(np.float32) * np.float32(1 / 255)
    image = (image - IMAGENET_MEAN.astype(np.float32)) / IMAGENET_STD.astype(np.float32)
    return np.ascontiguousarray(image.transpose(2, 0, 1))[None].astype(np.float32)


class HFExport(torch.nn.Module):
    """DepthAnythingForDepthEstimation: ``predicted_depth`` is N x H x W (squeeze(dim=1))."""

    def __init__(self) -> None:
        super().__init__()
        self.body = Body(3)
        torch.manual_seed(4)
        self.mix = torch.nn.Linear(8, 8)  # a MatMul, as the ViT has: what 4-bit quantises

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.body.c1(pixel_values))
        y = self.mix(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return torch.nn.functional.softplus(self.body.c2(y))[:, 0] + 0.05


def export_hf(path: Path) -> Path:
    """Export as optimum does for depth estimation (huggingface/optimum exporters/onnx/base.py).

    Input ``pixel_values`` {0: batch_size, 1: num_channels, 2: height, 3: width}, output
    ``predicted_depth`` {0: batch_size, 1: height, 2: width}; opset 14.
    """
    return export(HFExport(), path, (518, 518), 14, ["pixel_values"], ["predicted_depth"],
                  {"pixel_values": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"},
                   "predicted_depth": {0: "batch_size", 1: "height", 2: "width"}})


def to_fp16(src: Path, dst: Path) -> Path:
    """Write a float16 model: weights, constants and I/O in fp16 (like a model_fp16.onnx)."""
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            half = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(half, init.name))
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attr.t).astype(np.float16)))
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del model.graph.value_info[:]
    onnx.save(model, str(dst))
    return dst


def to_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation, as model_quantized.onnx / model_int8.onnx are made."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    return dst


def to_q4(src: Path, dst: Path, block: int = 16) -> Path:
    """4-bit weights: the MatMul becomes com.microsoft MatMulNBits (as model_q4.onnx has).

    Built by hand (symmetric, zero point 8, low nibble first) since onnxruntime's
    MatMulNBitsQuantizer needs the onnx_ir package.
    """
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    for index, node in enumerate(model.graph.node):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)  # K x N
        k, n = w.shape
        blocks = math.ceil(k / block)
        padded = np.zeros((blocks * block, n), np.float32)
        padded[:k] = w
        per_block = padded.T.reshape(n, blocks, block)
        scales = np.abs(per_block).max(axis=2) / 7.0
        scales[scales == 0] = 1.0
        q = np.clip(np.rint(per_block / scales[..., None]) + 8, 0, 15).astype(np.uint8)
        packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
        b_name, s_name = node.input[1] + "_q4", node.input[1] + "_scales"
        model.graph.initializer.extend([
            numpy_helper.from_array(packed, b_name),
            numpy_helper.from_array(scales.reshape(-1).astype(np.float32), s_name),
        ])
        model.graph.node[index].CopyFrom(helper.make_node(
            "MatMulNBits", [node.input[0], b_name, s_name], list(node.output),
            domain="com.microsoft", K=k, N=n, bits=4, block_size=block))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return dst


def test_hugging_face_onnx_community_export_matches_transformers(model_dir):
    """onnx-community/depth-anything-v2-small ``onnx/model.onnx`` vs transformers' DPT processor.

    Upstream: huggingface/transformers models/dpt/image_processing_dpt.py
    (get_resize_output_image_size, resize via image_transforms.py), the repository's
    preprocessor_config.json, names from huggingface/optimum exporters/onnx/base.py.
    A 320x240 camera shows the "scale as little as possible" rule: 518x392, not the 690x518 a
    shorter-side rule gives.
    """
    name = "depth_anything_v2_small_hf"
    path = export_hf(model_dir / PRESETS[name].filename)
    engine = load_both_ways(name, path)
    for w, h, expected in ((640, 480, (518, 686)), (320, 240, (392, 518))):
        rgb = make_image(w, h)
        pre = engine.config.preprocess(rgb, camera(w, h))
        upstream = hf_preprocess(rgb)
        assert upstream.shape[2:] == expected
        check_input(f"{name} {w}x{h}", pre.tensor, upstream, identity, 1e-5)
    rgb = make_image(686, 518, seed=3)
    (raw,) = run_onnx(path, hf_preprocess(rgb))
    check_depth(name, engine.infer(rgb, camera(686, 518)), 1.0 / raw[0], 1e-5)


def test_hugging_face_input_is_within_a_grey_level_of_pillows_bicubic():
    """Against the slow DPTImageProcessor's PIL resample (where Pillow is installed).

    PIL's 8-bit bicubic rounds between its two passes; measured here: mean 0.17 grey levels,
    >= 99.9 % of values within one grey level, the rest at hard edges.
    """
    pytest.importorskip("PIL")
    config = PRESETS["depth_anything_v2_small_hf"].config
    rgb = make_image(640, 480)
    diff = np.abs(config.preprocess(rgb, camera(640, 480)).tensor - hf_preprocess(rgb, pil=True))
    grey = float(1 / 255 / IMAGENET_STD.min())
    FIGURES["depth_anything_v2_small_hf vs PIL mean abs diff (grey levels)"] = float(
        diff.mean() / grey)
    assert diff.mean() < 0.5 * grey and (diff <= grey + 1e-6).mean() > 0.999


@pytest.mark.parametrize("variant", ["fp16", "quantized", "q4"])
def test_hugging_face_quantized_variants_load_and_agree(model_dir, variant):
    """The repository's model_fp16 / model_quantized (int8) / model_q4 variants load and run.

    Found by the preset's name when only that variant is present, and close to the fp32 model.
    """
    name = "depth_anything_v2_small_hf"
    fp32 = export_hf(model_dir.parent / "fp32" / "model.onnx")
    target = model_dir / f"depth-anything-v2-small/onnx/model_{variant}.onnx"
    target.parent.mkdir(parents=True)
    {"fp16": to_fp16, "quantized": to_int8, "q4": to_q4}[variant](fp32, target)
    engine = load_both_ways(name, target)
    reference = load_engine(str(fp32), device="cpu", preset=name)
    rgb, cam = make_image(640, 480), camera(640, 480)
    depth, ref = engine.infer(rgb, cam), reference.infer(rgb, cam)
    assert np.isfinite(depth).all()
    rel = float(np.median(np.abs(depth - ref) / ref))
    FIGURES[f"{name} {variant} vs fp32 median rel diff"] = rel
    assert rel < {"fp16": 2e-3, "quantized": 0.05, "q4": 0.1}[variant]
    assert np.corrcoef(depth.ravel(), ref.ravel())[0, 1] > 0.95


# ----------------------------------------------------------------------------- MiDaS
class MidasPreprocessing(torch.nn.Module):
    """isl-org/MiDaS tf/make_onnx_model.py ``MidasNet_preprocessing``: normalise in the graph.

    ``x.sub_(mean).div_(std)`` with ImageNet values, then the network (squeeze(dim=1): N x H x W).
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = Body(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor([0.485, 0.456, 0.406])
        std = torch.tensor([0.229, 0.224, 0.225])
        x = (x - mean[None, :, None, None]) / std[None, :, None, None]
        return torch.squeeze(self.body(x), dim=1)


def midas_run_onnx_input(rgb: np.ndarray) -> np.ndarray:
    """Prepare the input as isl-org/MiDaS tf/run_onnx.py does.

    ``utils.read_image`` (RGB / 255) and ``Resize(256, 256, keep_aspect_ratio=False,
    ensure_multiple_of=32, upper_bound, INTER_CUBIC)``, no normalisation.
    """
    img = rgb / 255.0
    img = cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32)[None]


def test_midas_small_release_file_matches_upstream_runner(model_dir):
    """Check MiDaS v2.1 small: tf/make_onnx_model.py export (opset 9, exporter-chosen names).

    Upstream: isl-org/MiDaS tf/run_onnx.py, tf/utils.py, tf/transforms.py; release asset
    model-small.onnx (tf/README.md). The package must not normalise again (it used to: the
    network then saw [-11, 10] instead of [-2.1, 2.6]).
    """
    name = "midas_v21_small"
    path = export(MidasPreprocessing(), model_dir / "model-small.onnx", (256, 256), 9)
    engine = load_both_ways(name, path)
    rgb = make_image(640, 480)
    pre = engine.config.preprocess(rgb, camera(640, 480))
    check_input(name, pre.tensor, midas_run_onnx_input(rgb), imagenet, 1e-4)
    rgb = make_image(256, 256, seed=4)
    (raw,) = run_onnx(path, midas_run_onnx_input(rgb))
    check_depth(name, engine.infer(rgb, camera(256, 256)), 1.0 / raw.reshape(256, 256), 1e-4)


# ----------------------------------------------------------------------------- Depth Anything 3
class DA3OnnxWrapper(torch.nn.Module):
    """Stand in for ika's DA3 export wrapper.

    ika-rwth-aachen/ros2-depth-anything-v3-trt onnx/export.py ``DepthAnything3OnnxWrapper``
    returns (depth [B, 1, H, W], sky [B, 1, H, W]).
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = Body(6, scale=4.0)
        torch.manual_seed(7)
        self.sky = torch.nn.Conv2d(3, 1, 5, padding=2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(image), torch.sigmoid(self.sky(image) * 3.0)


def ika_preprocess(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Prepare the input as ika's node does (tensorrt_depth_anything.cpp ``preprocess``).

    cv::resize(INTER_CUBIC) of the 8-bit image to the engine's input size, value / 255,
    ImageNet mean/std (BGR->RGB order).
    """
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    x = (resized.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None].astype(np.float32)


@pytest.mark.parametrize("height, width", [(280, 504), (182, 336)])
def test_depth_anything_3_ika_export_matches_upstream(model_dir, height, width):
    """DA3 metric, ika export at its default 280x504 and at another export size.

    Upstream: ika-rwth-aachen/ros2-depth-anything-v3-trt onnx/export.py (input 'image',
    outputs 'depth', 'sky', static, opset 20) and tensorrt_depth_anything.cpp (preprocess;
    metres = depth * 0.5 * (fx * sx + fy * sy) / 300); ByteDance-Seed/Depth-Anything-3
    README.md (focal = mean of fx and fy) and utils/alignment.py compute_sky_mask (non-sky:
    sky < 0.3): sky pixels are NaN here (REP 118) instead of ika's fill value.
    """
    name = "depth_anything_3_metric"
    path = export(DA3OnnxWrapper(), model_dir / "DA3METRIC-LARGE.onnx", (height, width), 20,
                  ["image"], ["depth", "sky"])
    engine = load_both_ways(name, path)
    assert (engine.config.input_height, engine.config.input_width) == (height, width)
    rgb, cam = make_image(640, 480), camera(640, 480)
    pre = engine.config.preprocess(rgb, cam)
    check_input(f"{name} {width}x{height}", pre.tensor, ika_preprocess(rgb, height, width),
                identity, 1e-5)
    # The focal rule on the resized camera, on the network grid.
    raw, sky = run_onnx(path, ika_preprocess(rgb, height, width))
    focal = 0.5 * (cam.fx * width / 640 + cam.fy * height / 480)
    rule = np.where(sky[0, 0] < 0.3, raw[0, 0] * focal / 300.0, np.nan)
    assert 0.05 < np.isnan(rule).mean() < 0.95  # the test net marks some sky, not all
    masked = np.where(engine.config.sky_mask(sky[0, 0]), np.nan, raw[0, 0])
    check_depth(f"{name} {width}x{height} rule", engine.config.to_metric(masked, pre.net_camera),
                rule, 1e-5)
    # End to end on an image of the network's size: sky pixels NaN, the rest by the rule.
    rgb, cam = make_image(width, height, seed=5), camera(width, height)
    raw, sky = run_onnx(path, ika_preprocess(rgb, height, width))
    rule = np.where(sky[0, 0] < 0.3, raw[0, 0] * 0.5 * (cam.fx + cam.fy) / 300.0, np.nan)
    check_depth(f"{name} {width}x{height}", engine.infer(rgb, cam), rule, 1e-5)


def test_depth_anything_3_export_without_sky_output_still_loads(model_dir):
    """An export with only a depth output (e.g. other DA3 exports) runs; nothing is masked."""
    path = export(Body(8), model_dir / "da3_depth_only.onnx", (280, 504), 17, ["image"],
                  ["depth"])
    engine = load_engine(str(path), device="cpu", preset="depth_anything_3_metric")
    assert engine.config.sky_output_name is None
    assert np.isfinite(engine.infer(make_image(504, 280), camera(504, 280))).all()


# ----------------------------------------------------------------------------- Metric3D
class Metric3DExportModel(torch.nn.Module):
    """YvanYin/Metric3D onnx/metric3d_onnx_export.py: normalisation (0-255 units) in the model."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("rgb_mean", torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1))
        self.body = Body(9, scale=20.0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.body((image - self.rgb_mean) / self.rgb_std)  # pred_depth: 1 x 1 x h x w


def metric3d_prepare_input(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """YvanYin/Metric3D onnx/test_onnx.py ``prepare_input`` (and hubconf.py's example)."""
    input_size = (616, 1064)
    h, w = rgb.shape[:2]
    scale = min(input_size[0] / h, input_size[1] / w)
    resized = cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_LINEAR)
    padding = [123.675, 116.28, 103.53]
    h, w = resized.shape[:2]
    pad_h, pad_w = input_size[0] - h, input_size[1] - w
    padded = cv2.copyMakeBorder(resized, pad_h // 2, pad_h - pad_h // 2, pad_w // 2,
                                pad_w - pad_w // 2, cv2.BORDER_CONSTANT, value=padding)
    return np.ascontiguousarray(np.transpose(padded, (2, 0, 1))[None], dtype=np.float32), scale


def metric3d_in_graph(x: np.ndarray) -> np.ndarray:
    mean = np.array([123.675, 116.28, 103.53])[None, :, None, None]
    std = np.array([58.395, 57.12, 57.375])[None, :, None, None]
    return (x - mean) / std


def test_metric3d_official_export_matches_upstream(model_dir):
    """Check Metric3D v2 ViT-S against YvanYin/Metric3D's export and runner.

    onnx/metric3d_onnx_export.py (input 'image', output 'pred_depth', static 1x3x616x1064,
    opset 11) and onnx/test_onnx.py / hubconf.py pre- and post-processing.

    Upstream: YvanYin/Metric3D. Metres = out * fx * scale / 1000 (hubconf.py de-canonical
    transform). The package scales fx by the resized content's real width ratio, which differs
    from upstream's nominal ``scale`` by under one pixel of the content width (the bound below).
    1001x700 makes int() and round() of the content width differ (880 vs 881).
    """
    name = "metric3d_v2_small"
    path = export(Metric3DExportModel(), model_dir / "metric3d_vit_small.onnx", (616, 1064), 11,
                  ["image"], ["pred_depth"])
    engine = load_both_ways(name, path)
    rgb, cam = make_image(1001, 700), camera(1001, 700, fx=700.0, fy=700.0)
    pre = engine.config.preprocess(rgb, cam)
    upstream, scale = metric3d_prepare_input(rgb)
    check_input(name, pre.tensor, upstream, metric3d_in_graph, 1e-5)
    (raw,) = run_onnx(path, upstream)
    rule = raw[0, 0] * cam.fx * scale / 1000.0
    content_bound = 1.0 / pre.transform.content_width
    check_depth(f"{name} rule", engine.config.to_metric(raw[0, 0], pre.net_camera), rule,
                content_bound)
    rgb, cam = make_image(1064, 616, seed=6), camera(1064, 616, fx=900.0, fy=900.0)
    upstream, scale = metric3d_prepare_input(rgb)
    assert scale == 1.0
    (raw,) = run_onnx(path, upstream)
    rule = np.clip(raw[0, 0] * cam.fx / 1000.0, 0, 300)
    assert rule.max() < 300  # upstream clamps at 300 m; the package publishes NaN there
    check_depth(name, engine.infer(rgb, cam), rule, 1e-5)


def test_every_public_preset_has_a_contract_test_here():
    """A new preset needs an upstream contract above, not a stand-in derived from itself."""
    source = Path(__file__).read_text()
    for preset in PRESETS.values():
        if preset.packaged is None:
            assert f'"{preset.name}"' in source, preset.name
            assert preset.source and preset.upstream and preset.config.description
            assert all(name.endswith(".onnx") for name in preset.filenames)


def test_preset_file_missing_error_says_where_and_how(model_dir):
    """The error names the file(s), the folders searched, the download and both spellings."""
    with pytest.raises(Recon3dError) as info:
        resolve_model("metric3d_v2_small")
    message = str(info.value)
    assert "metric3d_vit_small.onnx" in message and str(model_dir) in message
    assert "preset:=metric3d_v2_small" in message and "--preset metric3d_v2_small" in message
    assert "preset=" not in message.replace("preset:=", "")


def teardown_module() -> None:
    if FIGURES:
        width = max(len(k) for k in FIGURES)
        print("\npreset contract figures:")
        for key, value in sorted(FIGURES.items()):
            print(f"  {key:<{width}}  {value:.3g}")
