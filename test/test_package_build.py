"""Build the package with colcon, as a ROS user would, and check what gets installed.

colcon (colcon-core + colcon-ros from PyPI, installed by ``make setup``) builds the repository
as an ``ament_python`` package into a temporary workspace, in both the copy and the
``--symlink-install`` layouts. The checks are what ``ros2 run recon3d_ros depth_node`` and
``ros2 launch recon3d_ros depth.launch.py`` rely on: the executables under
``lib/recon3d_ros``, the launch and config files under ``share/recon3d_ros``, and the ament
index marker that ``get_package_share_directory`` looks up; and ``colcon test``, which must
run the tests with pytest.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import subprocess
import sys
from xml.etree import ElementTree

import pytest

pytest.importorskip("colcon_core", reason="colcon-core is not installed (make setup installs it)")
pytest.importorskip("colcon_ros", reason="colcon-ros is not installed (make setup installs it)")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "recon3d_ros"
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"
BUILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class ColconInstall:
    """A finished colcon build of the package in a temporary workspace."""

    workspace: Path
    prefix: Path  # install/recon3d_ros (colcon's default isolated layout)
    symlink: bool  # built with --symlink-install
    output: str

    @property
    def share(self) -> Path:
        return self.prefix / "share" / PACKAGE

    @property
    def lib(self) -> Path:
        return self.prefix / "lib" / PACKAGE

    @property
    def site_packages(self) -> Path:
        return self.prefix / "lib" / PYTHON_DIR / "site-packages"

    def env(self) -> dict[str, str]:
        """Environment after ``. install/setup.sh``, as a ROS user sources the workspace."""
        result = subprocess.run(["sh", "-c", ". ./setup.sh && env -0"],
                                cwd=self.workspace / "install", capture_output=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        env = dict(entry.split("=", 1) for entry in
                   result.stdout.decode().split("\0") if "=" in entry)
        assert str(self.prefix) in env.get("AMENT_PREFIX_PATH", ""), env.get("AMENT_PREFIX_PATH")
        return env

    def run_python(self, code: str) -> subprocess.CompletedProcess[str]:
        # cwd is the workspace so that the source tree is not importable via the cwd.
        return subprocess.run([sys.executable, "-c", code], cwd=self.workspace, env=self.env(),
                              capture_output=True, text=True, timeout=120)


def run_colcon(workspace: Path, verb: str, *arguments: str) -> str:
    """Run ``colcon <verb>`` on the repository in ``workspace``; returns its output."""
    command = [sys.executable, "-m", "colcon", "--log-base", str(workspace / "log"), verb,
               "--paths", str(REPO),
               "--build-base", str(workspace / "build"),
               "--install-base", str(workspace / "install"),
               "--event-handlers", "console_direct+", *arguments]
    env = dict(os.environ)
    # A developer's ~/.colcon/defaults.yaml must not change what is tested.
    env["COLCON_HOME"] = str(workspace / "colcon_home")
    result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"colcon {verb} failed ({result.returncode}):\n{output}"
    return output


def colcon_build(workspace: Path, symlink_install: bool) -> ColconInstall:
    output = run_colcon(workspace, "build", *(["--symlink-install"] if symlink_install else []))
    return ColconInstall(workspace, workspace / "install" / PACKAGE, symlink_install, output)


@pytest.fixture(scope="module", params=["copy", "symlink"])
def installed(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> ColconInstall:
    workspace = tmp_path_factory.mktemp(f"colcon_{request.param}")
    return colcon_build(workspace, symlink_install=request.param == "symlink")


def source_files(pattern: str) -> list[Path]:
    return sorted(REPO.glob(pattern))


def test_built_as_ament_python_package(installed: ColconInstall) -> None:
    # Only colcon-ros' ament_python build type writes the ament_prefix_path hook; the plain
    # Python build type would install the code but leave the package invisible to ros2.
    assert (installed.share / "hook" / "ament_prefix_path.dsv").is_file(), installed.output
    marker = installed.prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.is_file()


@pytest.mark.parametrize("executable", ["depth_node", "fusion_node", "recon3d"])
def test_executables_installed_where_ros2_run_looks(installed: ColconInstall,
                                                    executable: str) -> None:
    path = installed.lib / executable
    assert path.is_file(), f"{path} missing; setup.cfg [install] install_scripts is wrong?"
    assert os.access(path, os.X_OK)


@pytest.mark.parametrize("relative", [
    "package.xml",
    "launch/depth.launch.py",
    "config/recon3d.yaml",
    "config/recon3d.rviz",
    "config/fastdds_large_data.xml",
])
def test_share_files_installed(installed: ColconInstall, relative: str) -> None:
    installed_file = installed.share / relative
    assert installed_file.is_file(), f"{installed_file} missing"
    assert installed_file.read_bytes() == (REPO / relative).read_bytes()


def test_every_launch_and_config_file_installed(installed: ColconInstall) -> None:
    patterns = ["launch/*.launch.py", "config/*.yaml", "config/*.rviz", "config/*.xml"]
    missing = [str(path.relative_to(REPO)) for pattern in patterns
               for path in source_files(pattern)
               if not (installed.share / path.relative_to(REPO)).is_file()]
    assert not missing, f"not installed to share/{PACKAGE}: {missing}"


def imported_package_dir(installed: ColconInstall) -> Path:
    """Directory of the recon3d_ros package that Python imports in the installed environment."""
    result = installed.run_python("import recon3d_ros; print(recon3d_ros.__file__)")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip()).resolve().parent


def test_installed_code_is_imported_from_the_install_space(installed: ColconInstall) -> None:
    package_dir = imported_package_dir(installed)
    if installed.symlink:
        # --symlink-install runs `setup.py develop`: the code is used from the source tree.
        assert package_dir == (REPO / PACKAGE).resolve()
    else:
        assert package_dir == (installed.site_packages / PACKAGE).resolve()


def test_shipped_weights_installed_with_the_code(installed: ColconInstall) -> None:
    weights = source_files(f"{PACKAGE}/models/weights/*.pt")
    if not weights:
        pytest.skip(f"no weights in {PACKAGE}/models/weights yet (the model helper ships them)")
    package_dir = imported_package_dir(installed)
    shipped = [path for pattern in ("*.pt", "*.onnx", "*.yaml")
               for path in source_files(f"{PACKAGE}/models/weights/{pattern}")]
    for source in shipped:
        target = package_dir / source.relative_to(REPO / PACKAGE)
        assert target.is_file(), f"{target} missing; check package_data in setup.py"
        assert target.stat().st_size == source.stat().st_size


def test_type_information_installed_with_the_code(installed: ColconInstall) -> None:
    # PEP 561: without py.typed beside the code, type checkers ignore the package's annotations.
    assert (imported_package_dir(installed) / "py.typed").is_file()


def test_recon3d_script_runs(installed: ColconInstall) -> None:
    result = subprocess.run([str(installed.lib / "recon3d"), "--help"], cwd=installed.workspace,
                            env=installed.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "train", "eval", "export", "bench"):
        assert command in result.stdout


def test_depth_node_entry_point_resolves(installed: ColconInstall) -> None:
    # Loading the entry point imports recon3d_ros.depth_node (and rclpy) without starting a
    # node: starting one is the job of test/ros and the launch test.
    result = installed.run_python(
        "from importlib.metadata import distribution\n"
        f'eps = [e for e in distribution("{PACKAGE}").entry_points if e.name == "depth_node"]\n'
        "assert len(eps) == 1, eps\n"
        "main = eps[0].load()\n"
        "assert callable(main)\n"
        "print(eps[0].value)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "recon3d_ros.depth_node:main"


def test_ament_index_finds_the_share_directory(installed: ColconInstall) -> None:
    # What the launch file (and `ros2 launch recon3d_ros ...`) uses to find its config.
    result = installed.run_python(
        "from ament_index_python.packages import get_package_share_directory\n"
        f'print(get_package_share_directory("{PACKAGE}"))\n')
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == installed.share


def test_installed_package_finds_its_installed_dds_profile(installed: ColconInstall) -> None:
    # The harness' default FASTDDS_DEFAULT_PROFILES_FILE: a copied install has no source tree
    # next to the package, so it is the file under share/, found through the ament index (a
    # symlink install links both to the source tree's file).
    result = installed.run_python(
        "from recon3d_ros.ros.dds_profile import shipped_profile\n"
        "print(shipped_profile())\n")
    assert result.returncode == 0, result.stderr
    found = Path(result.stdout.strip())
    assert found.resolve() == (installed.share / "config" / "fastdds_large_data.xml").resolve()
    if not installed.symlink:
        assert found == installed.share / "config" / "fastdds_large_data.xml"


def test_installed_depth_node_starts_and_reports_a_bad_model(installed: ColconInstall) -> None:
    # `ros2 run recon3d_ros depth_node ...` execs exactly this file. A model path that does not
    # exist makes the node exit at start-up with a message naming it, without a traceback.
    missing_model = installed.workspace / "no_such_model.pt"
    result = subprocess.run(
        [str(installed.lib / "depth_node"), "--ros-args", "-p", f"model:={missing_model}"],
        cwd=installed.workspace, env=installed.env(), capture_output=True, text=True,
        timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert str(missing_model) in output
    assert "Traceback" not in output


def test_colcon_test_runs_the_tests_with_pytest(installed: ColconInstall) -> None:
    # colcon picks pytest only for a package with a pytest test dependency; without one it
    # ran unittest, which collected nothing ("Ran 0 tests") and passed. A small, DDS-free test
    # file keeps this quick; the junit file is what colcon's pytest step writes.
    if installed.symlink:
        pytest.skip("colcon test reads setup.py, not the install layout: one build is enough")
    test_file = "test/ros/test_launch_support.py"
    output = run_colcon(installed.workspace, "test", "--return-code-on-test-failure",
                        "--pytest-args", test_file)
    junit = installed.workspace / "build" / PACKAGE / "pytest.xml"
    assert junit.is_file(), f"colcon test did not run pytest:\n{output}"
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    expected = sum(line.startswith("def test_")
                   for line in (REPO / test_file).read_text(encoding="utf-8").splitlines())
    assert int(suite.get("tests")) == expected > 0, output
    assert int(suite.get("failures")) == int(suite.get("errors")) == 0, output
