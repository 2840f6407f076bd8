"""config/recon3d.yaml reaches the node in any namespace, and launch arguments only add to it.

Real node processes in their own DDS domain, read back through the node's own
``<namespace>/depth_node/get_parameters`` service (what ``ros2 param get`` does). A params file
keyed ``depth_node:`` only matches ``/depth_node``: under ``namespace:=front`` (the README's
example) the node is ``/front/depth_node`` and the file was silently ignored.
"""

from __future__ import annotations

import array
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
from typing import Any, Callable, Iterator

import pytest
import yaml

pytest.importorskip("rclpy")

from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402

from recon3d_ros.ros.launch_support import node_parameters  # noqa: E402
from recon3d_ros.ros.params import PARAMS  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "config" / "recon3d.yaml"
SERVICE_TIMEOUT_S = 60.0  # the node creates its services after loading the model
DEFAULTS = {spec.name: spec.default for spec in PARAMS}


def shipped_key() -> str:
    (key,) = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    return key


def node_name(namespace: str) -> str:
    return namespace.rstrip("/") + "/depth_node"


def read_parameters(ros: Any, wait_for: Callable[..., bool], node: str,
                    names: list[str]) -> dict[str, Any]:
    """Values of ``names`` from the running ``node``'s get_parameters service."""
    client = ros.node.create_client(GetParameters, f"{node}/get_parameters")
    assert client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S), f"no {node}/get_parameters"
    future = client.call_async(GetParameters.Request(names=names))
    assert wait_for(future.done, 20.0), f"no reply from {node}"
    values = [parameter_value_to_python(value) for value in future.result().values]
    # Array parameters come back as array.array: compare them as lists, like YAML's.
    return {name: value.tolist() if isinstance(value, array.array) else value
            for name, value in zip(names, values)}


def edited_copy(tmp_path: Path, edits: dict[str, str]) -> Path:
    """Write the shipped file's own text with the value of each name in ``edits`` replaced."""
    text = PARAMS_FILE.read_text(encoding="utf-8")
    for name, value in edits.items():
        text, count = re.subn(rf"^(\s+{name}:\s*)\S+", rf"\g<1>{value}", text, flags=re.M)
        assert count == 1, f"{name} appears {count} times in {PARAMS_FILE.name}"
    path = tmp_path / "edited_recon3d.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("namespace", ["/front", "/a/b", "/"])
def test_a_file_keyed_like_the_shipped_one_applies_in_any_namespace(
        tmp_path, start_node, depth_models, ros, wait_for, namespace) -> None:
    values = {"cloud_stride": 4, "max_depth": 42.5}
    assert all(DEFAULTS[name] != value for name, value in values.items())
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({shipped_key(): {"ros__parameters": values}}))
    start_node(params_file=params_file, remaps={"__ns": namespace},
               model=str(depth_models.constant()))
    assert read_parameters(ros, wait_for, node_name(namespace), list(values)) == values


def test_the_shipped_file_applies_under_a_namespace(tmp_path, start_node, depth_models,
                                                    ros, wait_for) -> None:
    # The shipped file's values are the code defaults, so one is edited in its own text to
    # show that the file (not the default) is what the node reports, for every parameter.
    params_file = edited_copy(tmp_path, {"cloud_stride": "4"})
    expected = yaml.safe_load(params_file.read_text())[shipped_key()]["ros__parameters"]
    assert expected["cloud_stride"] == 4 != DEFAULTS["cloud_stride"]
    model = str(depth_models.constant())
    expected["model"] = model  # -p model:= (the tiny test network) overrides the file
    start_node(params_file=params_file, remaps={"__ns": "/front"}, model=model)
    reported = read_parameters(ros, wait_for, "/front/depth_node", list(expected))
    assert reported == expected


@pytest.fixture
def start_with_files(tmp_path: Path,
                     ros_domain: int) -> Iterator[Callable[[str, list[Path]], None]]:
    """Start the node in ``namespace`` with several ``--params-file``s, as launch_ros does."""
    started: list[subprocess.Popen] = []

    def _start(namespace: str, files: list[Path]) -> None:
        command = [sys.executable, "-m", "recon3d_ros.depth_node", "--ros-args",
                   "-r", f"__ns:={namespace}", "-r", "__node:=depth_node"]
        for path in files:
            command += ["--params-file", str(path)]
        env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain), PYTHONPATH=str(REPO),
                   OMP_NUM_THREADS="1")
        with open(tmp_path / f"node{len(started)}.log", "wb") as log:
            started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=str(REPO)))

    yield _start
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def launch_ros_files(tmp_path: Path, node: str, parameters: list[Any]) -> list[Path]:
    """Files launch_ros' ``Node`` passes for ``parameters``, in the same order.

    A path is passed as it is; a dict is written to a file of its own keyed by the node's
    full name (launch_ros' ``Node._create_params_file_from_dict`` with a name and a namespace).
    """
    files = []
    for index, entry in enumerate(parameters):
        if isinstance(entry, dict):
            path = tmp_path / f"launch_params_{index}.yaml"
            path.write_text(yaml.safe_dump({node: {"ros__parameters": entry}}))
            entry = path
        files.append(Path(entry))
    return files


def test_launch_arguments_override_the_file_only_where_given(tmp_path, start_with_files,
                                                             depth_models, ros,
                                                             wait_for) -> None:
    # The file says torch on the CPU; the launch is given only a model (device and backend
    # left at their empty launch defaults). Before, the launch always passed device:=auto
    # and backend:=auto after the file.
    params_file = edited_copy(tmp_path, {"backend": '"torch"', "device": '"cpu"'})
    model = str(depth_models.constant())
    parameters = node_parameters({"params_file": str(params_file), "model": model,
                                  "device": "", "backend": ""})
    start_with_files("/front", launch_ros_files(tmp_path, "/front/depth_node", parameters))
    reported = read_parameters(ros, wait_for, "/front/depth_node",
                               ["model", "backend", "device", "precision"])
    file_values = yaml.safe_load(params_file.read_text())[shipped_key()]["ros__parameters"]
    assert reported == {"model": model, "backend": "torch", "device": "cpu",
                        "precision": file_values["precision"]}
