"""OnnxRunner: provider choice, I/O names, embedded config and error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from recon3d_ros.errors import (  # noqa: E402
    BackendUnavailableError,
    ConfigError,
    InferenceError,
    ModelLoadError,
)
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.inference.onnx_backend import (  # noqa: E402
    CONFIG_METADATA_KEY,
    OnnxRunner,
    choose_providers,
    read_embedded_config,
)

CONFIG = ModelConfig(input_width=64, input_height=48)
HAS_GPU_EP = bool(
    {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers())
)


def test_cpu_runner_matches_torch(tiny, modules):
    import torch

    net = modules["conv"]()
    path = tiny.onnx(net, "net.onnx")
    runner = OnnxRunner(path, CONFIG, device="cpu")
    runner.load()
    assert runner.providers == ["CPUExecutionProvider"] and runner.device == "cpu"
    assert (runner.input_name, runner.output_name) == ("image", "depth")
    x = np.random.default_rng(0).standard_normal((1, 3, 40, 56)).astype(np.float32)  # dynamic axes
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(runner.run(x), expected, rtol=1e-5, atol=1e-5)


def test_idle_pool_threads_do_not_spin(tiny, modules):
    # onnxruntime's documented session option (onnxruntime_session_options_config_keys.h):
    # "session.intra_op.allow_spinning", "0" = threads sleep when out of work.
    runner = OnnxRunner(tiny.onnx(modules["conv"](), "net.onnx"), CONFIG, intra_op_threads=2)
    runner.load()
    opts = runner._session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == 2


def test_provider_lists():
    assert choose_providers("cpu", "fp32", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    got = choose_providers(
        "cuda:1",
        "fp16",
        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert [p[0] if isinstance(p, tuple) else p for p in got] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert got[0][1]["device_id"] == 1 and got[0][1]["trt_fp16_enable"] is True
    assert got[1][1] == {"device_id": 1}
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        choose_providers("cuda:0", "fp32", ["CPUExecutionProvider"])


@pytest.mark.skipif(HAS_GPU_EP, reason="this onnxruntime has GPU providers")
def test_cuda_request_without_gpu_provider_says_what_to_install(tiny, modules):
    path = tiny.onnx(modules["constant"](), "c.onnx")
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu|no CUDA GPU"):
        OnnxRunner(path, CONFIG, device="cuda")
    assert OnnxRunner(path, CONFIG, device="auto").device == "cpu"


def test_configured_names_must_exist(tiny, modules):
    path = tiny.onnx(
        modules["constant"](), "c.onnx", input_name="pixel_values", output_name="predicted_depth"
    )
    runner = OnnxRunner(path, CONFIG.replace(input_name="image"), device="cpu")
    with pytest.raises(ModelLoadError, match="pixel_values"):
        runner.load()
    ok = OnnxRunner(
        path,
        CONFIG.replace(input_name="pixel_values", output_name="predicted_depth"),
        device="cpu",
    )
    ok.load()
    assert ok.run(np.zeros((1, 3, 48, 64), np.float32)).shape == (1, 1, 48, 64)


def test_fp16_needs_an_fp16_model_or_tensorrt(tiny, modules):
    path = tiny.onnx(modules["constant"](), "c.onnx")
    with pytest.raises(ConfigError, match="fp16"):
        OnnxRunner(path, CONFIG, device="cpu", precision="fp16").load()
    with pytest.raises(ConfigError, match="int8"):
        OnnxRunner(path, CONFIG, device="cpu", precision="int8")


def test_fixed_size_model_reports_the_shape_problem(tiny, modules):
    path = tiny.onnx(modules["conv"](), "fixed.onnx", dynamic=False)
    runner = OnnxRunner(path, CONFIG, device="cpu")
    runner.load()
    with pytest.raises(InferenceError, match="shape"):
        runner.run(np.zeros((1, 3, 40, 40), np.float32))


def test_embedded_config_in_metadata(tiny, modules):
    path = tiny.onnx(modules["constant"](), "m.onnx")
    assert read_embedded_config(path) is None
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = (
        CONFIG_METADATA_KEY,
        json.dumps(CONFIG.replace(depth_scale=7.0).to_dict()),
    )
    onnx.save(model, str(path))
    assert read_embedded_config(path)["depth_scale"] == 7.0


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        OnnxRunner(tmp_path / "x.onnx", CONFIG, device="cpu").load()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelLoadError, match="bad.onnx"):
        OnnxRunner(bad, CONFIG, device="cpu").load()


def test_auxiliary_sky_output_is_not_taken_for_depth_and_masks_sky(tiny):
    """Two outputs (depth, sky): unset names pick 'depth'; sky >= threshold becomes NaN."""
    import warnings

    torch = pytest.importorskip("torch")

    class DepthAndSky(torch.nn.Module):
        def forward(self, x):
            return x[:, 1:2], x[:, :1] * 0.0 + 2.0  # sky (first), depth

    path = tiny.root / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(DepthAndSky(), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False,
                          input_names=["image"], output_names=["sky", "depth"])
    runner = OnnxRunner(path, CONFIG.replace(input_width=4, input_height=4), device="cpu")
    runner.load()
    assert (runner.output_name, runner.sky_name) == ("depth", None)
    masked = OnnxRunner(
        path, CONFIG.replace(input_width=4, input_height=4, sky_output_name="sky"), device="cpu"
    )
    masked.load()
    x = np.zeros((1, 3, 4, 4), np.float32)
    x[0, 1, :2] = 0.9
    out = masked.run(x)
    assert np.isnan(out[0, 0, :2]).all() and np.all(out[0, 0, 2:] == 2.0)


def test_ambiguous_outputs_are_a_load_error_naming_them(tiny):
    import warnings

    torch = pytest.importorskip("torch")

    class TwoMaps(torch.nn.Module):
        def forward(self, x):
            return x[:, :1], x[:, 1:2]

    path = tiny.root / "ambiguous.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TwoMaps(), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False,
                          input_names=["image"], output_names=["a", "b"])
    with pytest.raises(ModelLoadError, match="'a'.*'b'.*output_name"):
        OnnxRunner(path, CONFIG, device="cpu").load()


def test_static_input_of_another_size_fails_at_load(tiny, modules):
    path = tiny.onnx(modules["conv"](), "fixed.onnx", size=(40, 40), dynamic=False)
    with pytest.raises(ConfigError, match="40x40"):
        OnnxRunner(path, CONFIG, device="cpu").load()
