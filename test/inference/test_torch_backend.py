"""TorchRunner: TorchScript archives, recon3d checkpoints, precision and the CUDA path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.errors import ConfigError, InferenceError, ModelLoadError  # noqa: E402
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.inference.torch_backend import (  # noqa: E402
    TorchRunner,
    is_torchscript_archive,
    read_checkpoint,
    read_embedded_config,
)

CONFIG = ModelConfig(input_width=32, input_height=24)
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)"
)


def _input(seed: int = 0, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32)


def test_torchscript_runs_and_matches_eager(tiny, modules):
    net = modules["conv"]()
    path = tiny.torchscript(net, "net.ts")
    runner = TorchRunner(path, CONFIG, device="cpu")
    runner.load()
    x = _input()
    out = runner.run(x)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32 and out.shape == (1, 1, 24, 32)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_archive_kind_and_embedded_config(tiny, modules):
    with_cfg = tiny.torchscript(modules["constant"](), "a.ts", CONFIG.replace(depth_scale=3.0))
    without = tiny.torchscript(modules["constant"](), "b.ts")
    assert is_torchscript_archive(with_cfg)
    assert read_embedded_config(with_cfg)["depth_scale"] == 3.0
    assert read_embedded_config(without) is None
    ckpt = tiny.root / "c.pt"
    torch.save({"arch": "x", "state_dict": {}, "config": CONFIG.to_dict()}, ckpt)
    assert not is_torchscript_archive(ckpt)
    assert read_embedded_config(ckpt)["input_width"] == 32


def test_non_checkpoint_dict_is_rejected_with_its_keys(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="weights"):
        read_checkpoint(path)


def test_pickled_module_is_refused_without_running_code(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # full pickle: would need weights_only=False
    with pytest.raises(ModelLoadError, match="pickled nn.Module"):
        TorchRunner(path, CONFIG, device="cpu").load()


def test_missing_and_truncated_files(tmp_path, tiny, modules):
    with pytest.raises(ModelLoadError, match="does not exist"):
        TorchRunner(tmp_path / "missing.pt", CONFIG, device="cpu").load()
    good = tiny.torchscript(modules["constant"](), "good.ts")
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="truncated.ts"):
        TorchRunner(truncated, CONFIG, device="cpu").load()


def test_run_before_load_is_an_inference_error(tiny, modules):
    runner = TorchRunner(tiny.torchscript(modules["constant"](), "c.ts"), CONFIG, device="cpu")
    with pytest.raises(InferenceError, match="before load"):
        runner.run(_input())


def test_wrong_input_shape_raises_inference_error(tiny, modules):
    runner = TorchRunner(tiny.torchscript(modules["conv"](), "c.ts"), CONFIG, device="cpu")
    runner.load()
    with pytest.raises(InferenceError, match="shape"):
        runner.run(np.zeros((1, 5, 8, 8), np.float32))


def test_precision_rules_on_cpu(tiny, modules):
    path = tiny.torchscript(modules["conv"](), "c.ts")
    with pytest.raises(ConfigError, match="fp16"):
        TorchRunner(path, CONFIG, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="int8"):
        TorchRunner(path, CONFIG, device="cpu", precision="int8")
    fp32 = TorchRunner(path, CONFIG, device="cpu")
    bf16 = TorchRunner(path, CONFIG, device="cpu", precision="bf16")
    fp32.load()
    bf16.load()
    x = _input(1)
    a, b = fp32.run(x), bf16.run(x)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=0.05, atol=0.05)  # bf16 has ~3 significant digits
    assert not np.array_equal(a, b), "bf16 path should really run in bf16"


def test_from_module_selects_named_dict_output():
    class TwoHeads(torch.nn.Module):
        def forward(self, x):
            return {"normal": x[:, :3], "depth": x[:, :1] * 2.0}

    runner = TorchRunner.from_module(TwoHeads(), CONFIG.replace(output_name="depth"), device="cpu")
    runner.load()
    x = _input(2)
    np.testing.assert_allclose(runner.run(x), x[:, :1] * 2.0)
    missing = TorchRunner.from_module(TwoHeads(), CONFIG.replace(output_name="disp"), device="cpu")
    missing.load()
    with pytest.raises(InferenceError, match="disp"):
        missing.run(x)


def test_checkpoint_is_rebuilt_with_build_model(tmp_path):
    if importlib.util.find_spec("recon3d_ros.models") is None:
        pytest.skip("recon3d_ros.models (build_model) not available yet")
    models = importlib.import_module("recon3d_ros.models")
    if not hasattr(models, "build_model") or not getattr(models, "ARCHITECTURES", None):
        pytest.skip("recon3d_ros.models exposes no build_model/ARCHITECTURES")
    arch = sorted(models.ARCHITECTURES)[0]
    net = models.build_model(arch).eval()
    path = tmp_path / "ckpt.pt"
    torch.save(
        {
            "arch": arch,
            "arch_kwargs": {},
            "state_dict": net.state_dict(),
            "config": CONFIG.to_dict(),
            "meta": {"epochs": 1},
        },
        path,
    )
    runner = TorchRunner(path, CONFIG, device="cpu")
    runner.load()
    x = _input(3, 64, 64)
    with torch.no_grad():
        expected = net(torch.from_numpy(x))
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    np.testing.assert_allclose(runner.run(x), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert runner.meta == {"epochs": 1}
    broken = tmp_path / "broken.pt"
    torch.save({"arch": arch, "arch_kwargs": {}, "state_dict": {}}, broken)
    with pytest.raises(ModelLoadError, match="does not match"):
        TorchRunner(broken, CONFIG, device="cpu").load()


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_graph_path_matches_cpu(tiny, modules, precision):
    path = tiny.torchscript(modules["conv"](), "c.ts")
    cpu = TorchRunner(path, CONFIG, device="cpu")
    gpu = TorchRunner(path, CONFIG, device="cuda", precision=precision)
    cpu.load()
    gpu.load()
    x = _input(4)
    expected = cpu.run(x)
    for _ in range(3):  # first call captures, later calls replay the graph
        out = gpu.run(x)
    tol = 1e-4 if precision == "fp32" else 3e-2
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    assert gpu._graphs, "a CUDA graph should have been captured for the static shape"
    x2 = _input(5)
    np.testing.assert_allclose(gpu.run(x2), cpu.run(x2), rtol=tol, atol=tol)


def test_cpu_threads_set_torch_threads_at_load(tiny, modules):
    path = tiny.torchscript(modules["constant"](), "c.ts")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        runner = TorchRunner(path, CONFIG, device="cpu", cpu_threads=1)
        assert torch.get_num_threads() == 3  # nothing changes before load()
        runner.load()
        assert torch.get_num_threads() == 1
        np.testing.assert_allclose(runner.run(_input()), 2.0)
    finally:
        torch.set_num_threads(before)
