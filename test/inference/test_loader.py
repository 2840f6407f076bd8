"""load_engine: model resolution, config layering and exact depth on the image grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError, ModelLoadError
from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.inference.loader import load_engine, resolve_model, sidecar_path
from recon3d_ros.inference.presets import PRESETS

STRETCH = ModelConfig(input_width=64, input_height=48, resize_mode="stretch")


def _camera(width: int = 96, height: int = 72, fx: float = 100.0) -> PinholeCamera:
    return PinholeCamera(width, height, fx, fx, (width - 1) / 2, (height - 1) / 2)


def _image(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_metric_depth_is_the_network_output_on_the_image_grid(tiny, modules):
    path = tiny.torchscript(modules["constant"](2.0), "const.ts", STRETCH)
    engine = load_engine(str(path), device="cpu")
    depth = engine.infer(_image(), _camera())
    assert engine.backend == "torch" and engine.device == "cpu" and engine.precision == "fp32"
    assert depth.shape == (72, 96) and depth.dtype == np.float32
    np.testing.assert_array_equal(depth, np.full((72, 96), 2.0, np.float32))


def test_canonical_focal_scales_depth_with_the_input_focal_length(tiny, modules):
    config = STRETCH.replace(canonical_focal=50.0)
    path = tiny.torchscript(modules["constant"](2.0), "canon.ts", config)
    engine = load_engine(path, device="cpu")
    # 96 px wide image stretched to 64: network focal = fx * 64 / 96.
    for fx in (75.0, 150.0, 300.0):
        depth = engine.infer(_image(), _camera(fx=fx))
        expected = 2.0 * (fx * 64 / 96) / 50.0
        np.testing.assert_allclose(depth, expected, rtol=1e-6)


def test_relative_inverse_depth_uses_scale_and_shift(tiny, modules):
    path = tiny.onnx(modules["constant"](4.0), "rel.onnx")
    engine = load_engine(
        path,
        config_overrides={
            **STRETCH.to_dict(),
            "output_kind": "relative_inverse_depth",
            "depth_scale": 0.5,
            "depth_shift": 0.25,
        },
    )
    assert engine.backend == "onnxruntime"
    depth = engine.infer(_image(), _camera())
    np.testing.assert_allclose(depth, 1.0 / (0.5 * 4.0 + 0.25), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_letterbox_padding_is_removed_when_mapping_back(tiny, modules, fmt):
    # A tall 64x128 image in a 64x64 letterbox: content 32 px wide at columns 16..47.
    config = ModelConfig(input_width=64, input_height=64, resize_mode="letterbox")
    if fmt == "torchscript":
        path = tiny.torchscript(modules["ramp"](), "ramp.ts", config)
    else:
        path = tiny.onnx(modules["ramp"](), "ramp.onnx", size=(64, 64))
        (tiny.root / "ramp.onnx.yaml").write_text(
            "model:\n  input_width: 64\n  input_height: 64\n  resize_mode: letterbox\n"
        )
    engine = load_engine(path, device="cpu")
    depth = engine.infer(_image(64, 128), _camera(64, 128))
    u = np.arange(64)
    # source column u sits at canvas column 16 + (u + 0.5) * 32 / 64 - 0.5; the ramp adds 1.
    expected = 16 + (u + 0.5) / 2 - 0.5 + 1
    np.testing.assert_allclose(
        depth[:, 1:-1], np.broadcast_to(expected[1:-1], (128, 62)), atol=1e-4
    )
    assert np.all(depth >= 16.0) and np.all(depth <= 49.0), "values from the padding leaked in"


def test_torch_and_onnxruntime_agree_on_the_same_network(tiny, modules):
    net = modules["conv"]()
    ts = tiny.torchscript(net, "net.ts", STRETCH)
    onnx_path = tiny.onnx(net, "net.onnx")
    image, camera = _image(seed=3), _camera()
    d_torch = load_engine(ts, device="cpu").infer(image, camera)
    d_onnx = load_engine(onnx_path, config_overrides=STRETCH.to_dict()).infer(image, camera)
    assert np.isfinite(d_torch).all()
    np.testing.assert_allclose(d_onnx, d_torch, rtol=1e-4, atol=1e-5)


def test_config_layers_embedded_then_sidecar_then_overrides(tiny, modules):
    path = tiny.torchscript(
        modules["constant"](1.0), "layers.ts", STRETCH.replace(depth_scale=2.0)
    )
    image, camera = _image(), _camera()
    assert np.allclose(load_engine(path, device="cpu").infer(image, camera), 2.0)
    (tiny.root / "layers.yaml").write_text("depth_scale: 3.0\n")  # same-stem sidecar
    source = resolve_model(str(path))
    assert source.config.depth_scale == 3.0 and source.config.input_width == 64  # embedded kept
    assert np.allclose(load_engine(path, device="cpu").infer(image, camera), 3.0)
    (tiny.root / "layers.ts.yaml").write_text("model:\n  depth_scale: 4.0\n")  # <file>.yaml wins
    assert sidecar_path(path) == tiny.root / "layers.ts.yaml"
    assert np.allclose(load_engine(path, device="cpu").infer(image, camera), 4.0)
    engine = load_engine(
        path, device="cpu", config_overrides={"depth_scale": 5.0, "max_depth": None}
    )
    assert np.allclose(engine.infer(image, camera), 5.0)


def test_max_depth_from_overrides_invalidates_far_pixels(tiny, modules):
    path = tiny.torchscript(modules["constant"](7.0), "far.ts", STRETCH)
    depth = load_engine(path, device="cpu", config_overrides={"max_depth": 5.0}).infer(
        _image(), _camera()
    )
    assert np.isnan(depth).all()


def test_missing_file_names_the_file_and_the_alternatives(tmp_path):
    missing = tmp_path / "nope" / "model.onnx"
    with pytest.raises(ModelLoadError) as info:
        load_engine(str(missing))
    message = str(info.value)
    assert str(missing) in message and "does not exist" in message
    assert ".onnx" in message and "preset" in message and "default" in message


def test_unknown_suffix_is_rejected(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="weights.bin"):
        load_engine(str(path))


@pytest.mark.parametrize("name", ["broken.onnx", "broken.pt", "broken.ts"])
def test_corrupt_files_raise_model_load_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ModelLoadError, match=name):
        load_engine(str(path), device="cpu")


def test_backend_that_cannot_read_the_suffix_is_rejected(tiny, modules):
    path = tiny.onnx(modules["constant"](), "c.onnx")
    with pytest.raises(ModelLoadError, match="torch"):
        load_engine(path, backend="torch")
    with pytest.raises(ConfigError, match="unknown backend"):
        load_engine(path, backend="openvino")


def test_unknown_config_key_is_a_config_error(tiny, modules):
    path = tiny.torchscript(modules["constant"](), "c.ts", STRETCH)
    with pytest.raises(ConfigError, match="input_sise"):
        load_engine(path, device="cpu", config_overrides={"input_sise": 3})


def test_public_preset_file_is_found_in_the_model_path(tmp_path, monkeypatch, tiny, modules):
    preset = PRESETS["midas_v21_small"]
    with pytest.raises(ModelLoadError, match=preset.filename):
        monkeypatch.setenv("RECON3D_MODEL_PATH", str(tmp_path / "empty"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        resolve_model("midas_v21_small")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    tiny.root = models_dir
    tiny.onnx(modules["constant"](0.5), preset.filename, size=(256, 256))
    monkeypatch.setenv("RECON3D_MODEL_PATH", str(models_dir))
    engine = load_engine("midas_v21_small")
    assert (
        engine.config.input_width == 256 and engine.config.output_kind == "relative_inverse_depth"
    )
    np.testing.assert_allclose(engine.infer(_image(), _camera()), 2.0, rtol=1e-6)


def test_explicit_preset_describes_a_downloaded_file(tiny, modules):
    path = tiny.onnx(modules["constant"](3.0), "whatever.onnx", size=(256, 256))
    source = resolve_model(path, preset="midas_v21_small")
    assert source.preset == "midas_v21_small" and source.config.input_height == 256
    with pytest.raises(ConfigError, match="unknown model preset"):
        resolve_model(path, preset="no_such_preset")


def test_packaged_default_model_runs_when_shipped():
    default = PRESETS["default"].packaged_path()
    if default is None or not default.is_file():
        pytest.skip(f"packaged default weights not built yet ({default})")
    engine = load_engine("default", device="cpu")
    rgb = _image(160, 120)
    depth = engine.infer(rgb, _camera(160, 120, fx=140.0))
    assert depth.shape == (120, 160)
    assert np.isfinite(depth).mean() > 0.5 and np.nanmin(depth) > 0


def test_sidecar_absent_returns_none(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    assert sidecar_path(Path(path)) is None


def test_packaged_onnx_twin_is_used_on_cpu_only_when_exported_from_the_same_weights(tiny, modules):
    from recon3d_ros.cli import main
    from recon3d_ros.inference.loader import cpu_onnx_twin

    ts = tiny.torchscript(modules["conv"](), "net.ts", STRETCH)
    onnx_path = tiny.root / "net.onnx"
    assert main(["export", str(ts), "-o", str(onnx_path)]) == 0
    assert cpu_onnx_twin(ts, onnx_path, "cpu") == onnx_path
    assert cpu_onnx_twin(ts, tiny.root / "absent.onnx", "cpu") is None
    assert cpu_onnx_twin(ts, None, "cpu") is None
    assert cpu_onnx_twin(ts, onnx_path, "cuda") is None  # GPU (or none here): the torch path
    # Retrained weights without a new export: the stale ONNX is not used.
    tiny.torchscript(modules["constant"](1.0), "net.ts", STRETCH)
    assert cpu_onnx_twin(ts, onnx_path, "cpu") is None


def test_packaged_preset_runs_its_onnx_twin_on_cpu(tiny, modules, monkeypatch):
    from recon3d_ros.cli import main
    from recon3d_ros.inference.presets import Preset

    ts = tiny.torchscript(modules["conv"](), "shipped.ts", STRETCH)
    onnx_path = tiny.root / "shipped.onnx"
    assert main(["export", str(ts), "-o", str(onnx_path)]) == 0
    # Absolute "packaged" paths stand in for files inside the package.
    preset = Preset("shipped", ModelConfig(), packaged=str(ts), packaged_onnx=str(onnx_path))
    monkeypatch.setitem(PRESETS, "shipped", preset)
    engine = load_engine("shipped", device="cpu")
    assert engine.backend == "onnxruntime" and engine.config.input_width == 64
    reference = load_engine(str(ts), device="cpu")
    np.testing.assert_allclose(
        engine.infer(_image(), _camera()), reference.infer(_image(), _camera()), rtol=1e-4
    )
    assert load_engine("shipped", device="cpu", precision="bf16").backend == "torch"
    assert load_engine("shipped", backend="torch", device="cpu").backend == "torch"
    named = load_engine("shipped", backend="onnxruntime", device="cpu")
    assert named.backend == "onnxruntime" and named.runner.model_path == onnx_path


def test_cpu_threads_reach_the_torch_and_onnxruntime_backends(tiny, modules):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    net = modules["conv"]()
    ts = tiny.torchscript(net, "net.ts", STRETCH)
    onnx_path = tiny.onnx(net, "net.onnx")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        engine = load_engine(str(ts), device="cpu", cpu_threads=1)
        assert engine.backend == "torch" and torch.get_num_threads() == 1
        assert np.isfinite(engine.infer(_image(), _camera())).all()
        torch.set_num_threads(2)
        load_engine(str(ts), device="cpu")  # 0 = leave torch's setting alone
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for threads in (1, 3):
        engine = load_engine(
            str(onnx_path), device="cpu", cpu_threads=threads, config_overrides=STRETCH.to_dict()
        )
        options = engine.runner._session.get_session_options()
        assert engine.backend == "onnxruntime" and options.intra_op_num_threads == threads


def test_negative_cpu_threads_is_a_config_error(tiny, modules):
    ts = tiny.torchscript(modules["constant"](), "c.ts", STRETCH)
    with pytest.raises(ConfigError, match="cpu_threads"):
        load_engine(str(ts), device="cpu", cpu_threads=-1)


# ----------------------------------------------------------------------------- precedence
def test_config_precedence_parameters_over_sidecar_over_preset_over_file_metadata(tiny, modules):
    """The loader's documented order: file metadata < preset < sidecar < node parameters."""
    import json

    import onnx

    from recon3d_ros.inference.onnx_backend import CONFIG_METADATA_KEY

    path = tiny.onnx(modules["constant"](2.0), "net.onnx", size=(256, 256))
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = CONFIG_METADATA_KEY
    entry.value = json.dumps(
        ModelConfig(input_width=256, input_height=256, depth_scale=7.0, max_depth=9.0).to_dict()
    )
    onnx.save(model, str(path))
    assert resolve_model(str(path)).config.depth_scale == 7.0  # file metadata alone
    # The preset (midas: relative, depth_scale 1) wins over the metadata.
    source = resolve_model(str(path), preset="midas_v21_small")
    assert (source.config.output_kind, source.config.depth_scale) == ("relative_inverse_depth", 1)
    # A sidecar naming the preset is the same as the parameter; its own keys win over it.
    sidecar = tiny.root / "net.onnx.yaml"
    sidecar.write_text("preset: midas_v21_small\ndepth_scale: 0.5\n")
    source = resolve_model(str(path))
    assert source.preset == "midas_v21_small" and source.config.depth_scale == 0.5
    assert source.config.input_range == "0-1"  # from the preset
    # Node parameters win over everything.
    source = resolve_model(str(path), config_overrides={"depth_scale": 0.25})
    assert source.config.depth_scale == 0.25
    # The preset parameter wins over the sidecar's preset key.
    source = resolve_model(str(path), preset="depth_anything_v2_small")
    assert source.preset == "depth_anything_v2_small"
    np.testing.assert_allclose(
        load_engine(str(path), device="cpu").infer(_image(), _camera()), 1.0 / (0.5 * 2.0)
    )


def test_sidecar_with_an_unknown_preset_names_the_sidecar(tiny, modules):
    path = tiny.onnx(modules["constant"](), "c.onnx")
    (tiny.root / "c.onnx.yaml").write_text("model:\n  preset: depth_anything_v9\n")
    with pytest.raises(ConfigError) as info:
        resolve_model(str(path))
    assert "c.onnx.yaml" in str(info.value) and "depth_anything_v2_small" in str(info.value)


# ----------------------------------------------------------------------------- integrity
def _copy_packaged(tmp_path: Path, name: str) -> Path:
    import shutil

    src = PRESETS["default"].packaged_path().parent / name
    if not src.is_file():
        pytest.skip(f"packaged {src} not built")
    dst = tmp_path / name
    shutil.copy(src, dst)
    shutil.copy(src.with_name(name + ".yaml"), dst.with_name(name + ".yaml"))
    return dst


def _flip_bytes(path: Path, count: int = 200) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    for index in rng.choice(len(data) // 2, size=count, replace=False) + len(data) // 2:
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["recon3d_small.onnx", "recon3d_small.pt"])
def test_packaged_weights_with_flipped_bytes_fail_at_start_up(tmp_path, name):
    """The shipped weights' sha256 (in their sidecars) is checked at load."""
    from recon3d_ros.errors import ModelLoadError

    path = _copy_packaged(tmp_path, name)
    assert np.isfinite(load_engine(str(path), device="cpu").infer(_image(), _camera())).any()
    _flip_bytes(path)
    with pytest.raises(ModelLoadError) as info:
        load_engine(str(path), device="cpu")
    message = str(info.value)
    assert str(path) in message and "sha256" in message and "corrupt" in message
    assert f"{name}.yaml" in message and "re-download" in message


def test_packaged_preset_by_name_checks_its_checksum(tmp_path, monkeypatch):
    from recon3d_ros.errors import ModelLoadError
    from recon3d_ros.inference.presets import Preset

    pt = _copy_packaged(tmp_path, "recon3d_small.pt")
    onnx_path = _copy_packaged(tmp_path, "recon3d_small.onnx")
    preset = Preset("shipped", ModelConfig(), packaged=str(pt), packaged_onnx=str(onnx_path))
    monkeypatch.setitem(PRESETS, "shipped", preset)
    assert load_engine("shipped", device="cpu").backend == "onnxruntime"
    _flip_bytes(onnx_path)
    with pytest.raises(ModelLoadError, match="recon3d_small.onnx is corrupt"):
        load_engine("shipped", device="cpu")


def test_exported_sidecar_records_the_checksum_of_the_onnx_file(tiny, modules):
    import yaml

    from recon3d_ros.cli import main
    from recon3d_ros.errors import ModelLoadError
    from recon3d_ros.inference.model_files import file_sha256

    ts = tiny.torchscript(modules["conv"](), "net.ts", STRETCH)
    out = tiny.root / "net.onnx"
    assert main(["export", str(ts), "-o", str(out)]) == 0
    recorded = yaml.safe_load(out.with_name("net.onnx.yaml").read_text())["model"]["sha256"]
    assert recorded == file_sha256(out)
    load_engine(str(out), device="cpu")
    _flip_bytes(out, 50)
    with pytest.raises(ModelLoadError, match="sha256"):
        load_engine(str(out), device="cpu")


def test_written_sidecar_layers_over_the_file_and_pins_its_checksum(tiny, modules):
    import hashlib

    import yaml

    from recon3d_ros.inference.loader import write_sidecar

    path = tiny.torchscript(modules["constant"](2.0), "const.ts", STRETCH)
    sidecar = write_sidecar(path, {"depth_scale": 3.0, "max_depth": None, "sha256": "stale"})
    assert sidecar == sidecar_path(path) == tiny.root / "const.ts.yaml"
    written = yaml.safe_load(sidecar.read_text())["model"]
    assert written["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    engine = load_engine(str(path), device="cpu")
    assert engine.config.depth_scale == 3.0 and engine.config.max_depth == float("inf")
    np.testing.assert_allclose(engine.infer(_image(), _camera()), 6.0)
