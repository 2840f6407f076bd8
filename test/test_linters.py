"""ROS 2 lint checks of the package: ament_flake8, ament_pep257 and package.xml validation.

ament_flake8 and ament_pep257 come from the ``ros-ament-*`` wheels that ``make setup``
installs, with the flake8 plugins their Debian packages bring (quotes, import order,
builtins, comprehensions, docstrings, ...), and run once per area of the repository so that a
failure points at its owner. ament_flake8 reads setup.cfg's ``[flake8]``: ament's own ROS 2
configuration (line length 99) with this project's conventions (double quotes, PEP 8 import
grouping); the same file gives the same result under a ROS install's ``colcon test``.

Every source file is also compiled by each supported Python found on the machine (3.10-3.12)
and its standard-library imports checked there, so 3.12-only syntax or a 3.11-only module
fails here rather than on a user's Ubuntu 22.04 (Python 3.10) machine.

ament_xmllint validates against a schema that it downloads, which is not possible here, so
package.xml is checked with catkin_pkg (the parser colcon and rosdep use, which enforces
REP 149) and against what setup.py and the code declare.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "recon3d_ros"
LINT_TIMEOUT_S = 300

# ament_pep257's "ament" convention requires the summary on the second line of a multi-line
# docstring (D213); this project puts it on the first line, as PEP 257 itself shows, so D213
# is ignored on top of the ament defaults. Every other ament_pep257 check applies.
PEP257_EXTRA_IGNORES = ["D213"]


def lint_areas() -> list[str]:
    """Paths linted separately: each subpackage, the top-level modules, tests, launch, etc."""
    areas = sorted(f"{PACKAGE}/{p.name}" for p in (REPO / PACKAGE).iterdir()
                   if p.is_dir() and (p / "__init__.py").is_file())
    areas += sorted(f"{PACKAGE}/{p.name}" for p in (REPO / PACKAGE).glob("*.py"))
    areas += [name for name in ("test", "launch", "benchmarks", "setup.py")
              if (REPO / name).exists()]
    return areas


def run_linter(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from an empty directory: ament_flake8 walks the whole cwd looking for AMENT_IGNORE
    # and would otherwise crawl .venv.
    script = Path(sys.executable).with_name(tool)
    command = [str(script)] if script.is_file() else [sys.executable, "-m", f"{tool}.main"]
    return subprocess.run(command + args, cwd=cwd, capture_output=True, text=True,
                          timeout=LINT_TIMEOUT_S)


@pytest.mark.parametrize("area", lint_areas())
def test_ament_flake8(area: str, tmp_path: Path) -> None:
    pytest.importorskip("ament_flake8", reason="ros-ament-flake8 is not installed (make setup)")
    result = run_linter("ament_flake8", ["--config", str(REPO / "setup.cfg"), str(REPO / area)],
                        tmp_path)
    assert result.returncode == 0, f"ament_flake8 {area}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("area", lint_areas())
def test_ament_pep257(area: str, tmp_path: Path) -> None:
    pytest.importorskip("ament_pep257", reason="ros-ament-pep257 is not installed (make setup)")
    result = run_linter("ament_pep257", ["--add-ignore", *PEP257_EXTRA_IGNORES, "--",
                                         str(REPO / area)], tmp_path)
    assert result.returncode == 0, f"ament_pep257 {area}:\n{result.stdout}{result.stderr}"


# --- supported Python versions ----------------------------------------------------------

SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12"]

# Run inside the interpreter under test (standard library only): every file must compile, and
# every standard-library import outside try/if blocks must exist in that version, e.g. no
# tomllib or typing.Self on 3.10. argv: JSON list of stdlib module names of any version, files.
STDLIB_CHECK = r"""
import ast, importlib, json, sys
known_stdlib = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names)
problems = []

def unguarded_imports(node, guarded=False):
    for child in ast.iter_child_nodes(node):
        inside = guarded or isinstance(child, (ast.Try, ast.If))
        if isinstance(child, (ast.Import, ast.ImportFrom)) and not guarded:
            yield child
        yield from unguarded_imports(child, inside)

def missing(module, name=None):
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return True
    if name is None or name == "*" or hasattr(loaded, name):
        return False
    try:
        importlib.import_module(module + "." + name)
    except ImportError:
        return True
    return False

for path in sys.argv[2:]:
    source = open(path, encoding="utf-8").read()
    try:
        tree = ast.parse(source, path)
        compile(tree, path, "exec")
    except SyntaxError as exc:
        problems.append(f"{path}:{exc.lineno}: syntax: {exc.msg}")
        continue
    for node in unguarded_imports(tree):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif node.level == 0 and node.module:
            pairs = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in pairs:
            if module.split(".")[0] in known_stdlib and missing(module, name):
                what = module if name is None else module + "." + name
                problems.append(f"{path}:{node.lineno}: {what} does not exist")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"""


def find_python(version: str) -> str | None:
    """Return an interpreter of ``version`` on PATH, from pyenv or the system, or None."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pattern = f"versions/{version}.*/bin/python{version}"
    candidates += [str(path) for path in sorted(pyenv_root.glob(pattern))]
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                    capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        expected = str(tuple(int(part) for part in version.split(".")))
        if result.returncode == 0 and result.stdout.strip() == expected:
            return candidate
    return None


def python_sources() -> list[str]:
    sources = [p for area in (PACKAGE, "test", "launch", "benchmarks")
               for p in (REPO / area).rglob("*.py")]
    return [str(p) for p in sorted(sources + [REPO / "setup.py"])]


@pytest.mark.parametrize("version", SUPPORTED_PYTHONS)
def test_sources_compile_and_import_stdlib_on_supported_python(version: str) -> None:
    interpreter = find_python(version)
    if interpreter is None:
        pytest.skip(f"no Python {version} interpreter on this machine")
    result = subprocess.run(
        [interpreter, "-c", STDLIB_CHECK, json.dumps(sorted(sys.stdlib_module_names))]
        + python_sources(), capture_output=True, text=True, timeout=LINT_TIMEOUT_S)
    assert result.returncode == 0, f"Python {version}:\n{result.stdout}{result.stderr}"


# --- package.xml ----------------------------------------------------------------------------

def package_xml() -> ElementTree.Element:
    return ElementTree.parse(REPO / "package.xml").getroot()


def test_package_xml_is_valid_for_colcon_and_rosdep() -> None:
    catkin_package = pytest.importorskip(
        "catkin_pkg.package", reason="catkin_pkg is not installed (make setup installs colcon)")
    # parse_package validates REP 149 (format 3): name, version, maintainer emails,
    # license, dependency tags and their attributes; it raises InvalidPackage otherwise.
    package = catkin_package.parse_package(str(REPO / "package.xml"))
    assert package.package_format == 3
    assert package.name == PACKAGE
    assert package.get_build_type() == "ament_python"
    assert package.licenses, "package.xml needs a <license>"
    assert all(m.email for m in package.maintainers)


def test_package_xml_declares_format_3_schema() -> None:
    text = (REPO / "package.xml").read_text(encoding="utf-8")
    assert "http://download.ros.org/schema/package_format3.xsd" in text
    assert package_xml().get("format") == "3"


def test_package_xml_version_matches_python_package() -> None:
    init = (REPO / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init, re.MULTILINE)
    assert match, f"{PACKAGE}/__init__.py has no __version__"
    assert package_xml().findtext("version") == match.group(1)


@pytest.mark.parametrize("tag, names", [
    ("exec_depend", ["rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs",
                     "python3-numpy", "python3-opencv", "python3-yaml"]),
    ("test_depend", ["ament_flake8", "ament_pep257", "ament_xmllint", "launch_testing",
                     "launch_testing_ros", "python3-pytest"]),
])
def test_package_xml_dependencies(tag: str, names: list[str]) -> None:
    root = package_xml()
    declared = {element.text for element in root.findall(tag)}
    declared |= {element.text for element in root.findall("depend")}
    missing = sorted(set(names) - declared)
    assert not missing, f"package.xml lacks <{tag}> for {missing}"


def test_package_xml_lists_the_ros_messages_the_code_imports() -> None:
    """Every ROS interface package the code imports must be a declared dependency."""
    declared = {element.text for element in package_xml()
                if element.tag in ("depend", "exec_depend")}
    imported: set[str] = set()
    pattern = re.compile(r"^\s*(?:from|import)\s+(\w+_(?:msgs|interfaces))\b", re.MULTILINE)
    for source in (REPO / PACKAGE).rglob("*.py"):
        imported |= set(pattern.findall(source.read_text(encoding="utf-8")))
    missing = sorted(imported - declared)
    assert not missing, f"imported but not declared in package.xml: {missing}"


def test_ament_resource_marker_matches_package_name() -> None:
    marker = REPO / "resource" / PACKAGE
    assert marker.is_file(), "resource/recon3d_ros is the ament index marker setup.py installs"


@pytest.mark.skipif(shutil.which("xmllint") is None,
                    reason="xmllint (libxml2-utils) is not installed on this machine")
def test_package_xml_well_formed_per_xmllint() -> None:
    result = subprocess.run(["xmllint", "--noout", str(REPO / "package.xml")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "XML_CATALOG_FILES": ""})
    assert result.returncode == 0, result.stderr
