"""Build script for recon3d_ros (ament_python: colcon, pip and ``pip install -e .``)."""

from __future__ import annotations

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE_NAME = "recon3d_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    """Return ``__version__`` from the package without importing it (no numpy at build time)."""
    with open(os.path.join(HERE, PACKAGE_NAME, "__init__.py"), encoding="utf-8") as init:
        for line in init:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip('"\'')
    raise RuntimeError(f"no __version__ in {PACKAGE_NAME}/__init__.py")


def share_files(pattern: str) -> list[str]:
    """Return the files matching ``pattern`` relative to the repo, sorted for stable builds.

    setuptools needs paths relative to setup.py; colcon runs setup.py from the repo root,
    while pip may run it from elsewhere, so the glob is anchored on HERE.
    """
    return sorted(os.path.relpath(path, HERE) for path in glob(os.path.join(HERE, pattern)))


setup(
    name=PACKAGE_NAME,
    version=read_version(),
    packages=find_packages(where=HERE, exclude=["test", "test.*"]),
    package_data={
        # Shipped default weights (and their configs) live inside the Python package so that
        # both a colcon install and a pip install find them next to the code.
        # py.typed (PEP 561): type checkers read the annotations of an installed copy.
        PACKAGE_NAME: ["py.typed", "models/weights/*.pt", "models/weights/*.onnx",
                       "models/weights/*.yaml"],
    },
    include_package_data=False,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
        ("share/" + PACKAGE_NAME, ["package.xml"]),
        ("share/" + PACKAGE_NAME + "/launch", share_files("launch/*.launch.py")),
        ("share/" + PACKAGE_NAME + "/config", share_files("config/*.yaml")
         + share_files("config/*.rviz") + share_files("config/*.xml")),
    ],
    python_requires=">=3.10",
    # Runtime dependencies are declared in package.xml (rosdep) and requirements.txt (pip).
    # Listing numpy/opencv here would make setuptools-generated scripts refuse to start on a
    # ROS machine where they come from apt (python3-opencv has no pip metadata).
    install_requires=["setuptools"],
    # colcon test runs pytest only for a package that declares it as a test dependency
    # (otherwise it falls back to unittest, which finds none of these tests). An extra, as in
    # the ament_python template: setuptools >= 72 no longer knows `tests_require`.
    extras_require={"test": ["pytest"]},
    zip_safe=False,
    maintainer="recon3d_ros maintainers",
    maintainer_email="recon3d-ros@example.com",
    description="Monocular metric depth and point clouds for ROS 2 cameras.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth_node = recon3d_ros.depth_node:main",
            "fusion_node = recon3d_ros.fusion_node:main",
            "recon3d = recon3d_ros.cli:main",
        ],
    },
)
