"""depth_node's start-up: signals at any moment, and bad input reported in one line.

The documented exit status (``recon3d_ros/depth_node.py``): 0 after SIGINT or SIGTERM, also
while the model loads; 1 when the node cannot start, with exactly one line on stderr,
``[depth_node] cannot start: ...``, saying what to do. Each case is a real node process with
its own DDS domain, its stderr read apart from its stdout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_YAML = REPO_ROOT / "config" / "recon3d.yaml"


def _node(domain: int, *ros_args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "recon3d_ros.depth_node", "--ros-args", *ros_args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(REPO_ROOT),
        text=True,
    )


def _own_lines(text: str) -> list[str]:
    """Non-empty stderr lines, without Fast DDS's own shared-memory port notices.

    Fast DDS prints ``RTPS_TRANSPORT_SHM Error ... Failed init_port`` when another process on
    the machine holds a shared-memory port; it is the middleware's line, not the node's.
    """
    return [
        line for line in text.splitlines() if line.strip() and "RTPS_TRANSPORT_SHM" not in line
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("after_s", [0.3, 0.8, 1.5])
def test_a_signal_during_start_up_exits_0_without_a_traceback(ros_domain, sig, after_s):
    # The default model: ONNX Runtime on the CPU, 2-4 s from launch to "subscribed" here, so
    # these moments fall into the imports, rclpy.init, node creation and the model load.
    proc = _node(ros_domain, "--params-file", str(CONFIG_YAML))
    time.sleep(after_s)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    print(f"{sig.name} after {after_s} s: exit {proc.returncode} in {took:.2f} s")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "RCLError" not in err, err
    assert took < 10.0


def test_sigterm_while_running_exits_0(ros_domain):
    proc = _node(ros_domain, "--params-file", str(CONFIG_YAML))
    deadline = time.monotonic() + 60
    err_lines = []
    while time.monotonic() < deadline:  # rclpy logs to stderr
        line = proc.stderr.readline()
        err_lines.append(line)
        if "subscribed to" in line or not line:
            break
    assert "subscribed to" in err_lines[-1], "".join(err_lines)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # a second one while it shuts down changes nothing
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    print(f"SIGTERM while running: exit {proc.returncode} in {took:.2f} s")
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def _junk_model(tmp_path: Path) -> Path:
    path = tmp_path / "junk.ts"
    path.write_bytes(os.urandom(4096))  # torch's error about it spans several lines
    return path


def _no_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return True
    return not torch.cuda.is_available()


def _no_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return True
    return False


BAD_INPUT = [
    pytest.param(["-p", "model:="], ["'-p model:='", "-p name:=value"], id="empty-model"),
    pytest.param(["-p", "model"], ["'-p model'", "-p name:=value"], id="override-without-value"),
    pytest.param(
        ["-p", "model:=/nonexistent/model.onnx"],
        ["/nonexistent/model.onnx", "does not exist", "preset name"],
        id="missing-model-file",
    ),
    pytest.param(
        ["-p", "model:=no_such_preset"], ["no_such_preset", "default"], id="unknown-model-name"
    ),
    pytest.param(["-p", "preset:=no_such_preset"], ["no_such_preset", "presets"], id="bad-preset"),
    pytest.param("junk", ["junk.ts"], id="corrupt-model-file"),
    pytest.param(
        ["-p", "device:=cuda"],
        ["'cuda'", "set device to 'cpu' or 'auto'"],
        id="cuda-without-gpu",
        marks=pytest.mark.skipif(not _no_cuda(), reason="a CUDA GPU is usable here"),
    ),
    pytest.param(["-p", "device:=tpu"], ["device", "'cuda:N'"], id="unknown-device"),
    pytest.param(["-p", "backend:=tflite"], ["backend", "onnxruntime"], id="unknown-backend"),
    pytest.param(
        ["-p", "backend:=tensorrt"],
        ["tensorrt", "install"],
        id="backend-not-installed",
        marks=pytest.mark.skipif(not _no_tensorrt(), reason="TensorRT is installed here"),
    ),
    pytest.param(["-p", "cloud_stride:=0"], ["cloud_stride", "[1, 64]"], id="out-of-range"),
    pytest.param(
        ["--params-file", "/nonexistent/params.yaml"],
        ["/nonexistent/params.yaml", "existing YAML file"],
        id="missing-params-file",
    ),
    pytest.param(["-r", "image"], ["'-r image'", "from:=to"], id="bad-remap"),
    pytest.param(["--no-such-flag"], ["--no-such-flag", "--params-file"], id="unknown-ros-arg"),
]


@pytest.mark.parametrize("args, expected", BAD_INPUT)
def test_bad_start_up_input_is_one_line_on_stderr_and_exit_1(
    ros_domain, tmp_path, args, expected
):
    if args == "junk":
        args = ["-p", f"model:={_junk_model(tmp_path)}", "-p", "backend:=torch"]
    proc = _node(ros_domain, "--params-file", str(CONFIG_YAML), *args)
    out, err = proc.communicate(timeout=90)
    lines = _own_lines(err)
    assert proc.returncode == 1, (out, err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("[depth_node] cannot start: "), line
    for text in expected:
        assert text in line, (text, line)
    assert not out.strip(), out


def test_the_entry_points_node_name_is_the_nodes():
    from recon3d_ros import depth_node
    from recon3d_ros.ros.node import NODE_NAME

    assert depth_node.NODE_NAME == NODE_NAME


def test_start_up_objects_are_frozen_out_of_later_collections():
    # In a fresh interpreter: gc.freeze() is process-wide. 20,000 lists made before the call
    # must be frozen (gc.get_freeze_count), and lists made after it must not be.
    code = (
        "import gc\n"
        "from recon3d_ros.depth_node import freeze_startup_objects\n"
        "kept = [[i] for i in range(20000)]\n"
        "freeze_startup_objects()\n"
        "frozen = gc.get_freeze_count()\n"
        "later = [[i] for i in range(5000)]\n"
        "print(frozen, gc.get_freeze_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    frozen, after = (int(v) for v in out.stdout.split())
    assert frozen >= 20000
    assert after == frozen
