"""ROS 2 lint checks of the package: ament_flake8, ament_pep257 and package.xml validation.

ament_flake8 and ament_pep257 come from the ``ros-ament-*`` wheels that ``make setup``
installs and run with their ROS defaults (line length 99), one test per area of the repository
so that a failure points at its owner. Only plain flake8 is installed (no flake8-quotes or
flake8-import-order plugins), so quote and import-order style are not enforced.

ament_xmllint validates against a schema that it downloads, which is not possible here, so
package.xml is checked with catkin_pkg (the parser colcon and rosdep use, which enforces
REP 149) and against what setup.py and the code declare.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'recon3d_ros'
LINT_TIMEOUT_S = 300

# ament_pep257's "ament" convention requires the summary on the second line of a multi-line
# docstring (D213); this project puts it on the first line, as PEP 257 itself shows, so D213
# is ignored on top of the ament defaults. Every other ament_pep257 check applies.
PEP257_EXTRA_IGNORES = ['D213']


def lint_areas() -> list[str]:
    """Paths linted separately: each subpackage, the top-level modules, tests, launch, etc."""
    areas = sorted(f'{PACKAGE}/{p.name}' for p in (REPO / PACKAGE).iterdir()
                   if p.is_dir() and (p / '__init__.py').is_file())
    areas += sorted(f'{PACKAGE}/{p.name}' for p in (REPO / PACKAGE).glob('*.py'))
    areas += [name for name in ('test', 'launch', 'benchmarks', 'setup.py')
              if (REPO / name).exists()]
    return areas


def run_linter(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from an empty directory: ament_flake8 walks the whole cwd looking for AMENT_IGNORE
    # and would otherwise crawl .venv.
    script = Path(sys.executable).with_name(tool)
    command = [str(script)] if script.is_file() else [sys.executable, '-m', f'{tool}.main']
    return subprocess.run(command + args, cwd=cwd, capture_output=True, text=True,
                          timeout=LINT_TIMEOUT_S)


@pytest.mark.parametrize('area', lint_areas())
def test_ament_flake8(area: str, tmp_path: Path) -> None:
    pytest.importorskip('ament_flake8', reason='ros-ament-flake8 is not installed (make setup)')
    result = run_linter('ament_flake8', [str(REPO / area)], tmp_path)
    assert result.returncode == 0, f'ament_flake8 {area}:\n{result.stdout}{result.stderr}'


@pytest.mark.parametrize('area', lint_areas())
def test_ament_pep257(area: str, tmp_path: Path) -> None:
    pytest.importorskip('ament_pep257', reason='ros-ament-pep257 is not installed (make setup)')
    result = run_linter('ament_pep257', ['--add-ignore', *PEP257_EXTRA_IGNORES, '--',
                                         str(REPO / area)], tmp_path)
    assert result.returncode == 0, f'ament_pep257 {area}:\n{result.stdout}{result.stderr}'


# --- package.xml ----------------------------------------------------------------------------

def package_xml() -> ElementTree.Element:
    return ElementTree.parse(REPO / 'package.xml').getroot()


def test_package_xml_is_valid_for_colcon_and_rosdep() -> None:
    catkin_package = pytest.importorskip(
        'catkin_pkg.package', reason='catkin_pkg is not installed (make setup installs colcon)')
    # parse_package validates REP 149 (format 3): name, version, maintainer emails,
    # license, dependency tags and their attributes; it raises InvalidPackage otherwise.
    package = catkin_package.parse_package(str(REPO / 'package.xml'))
    assert package.package_format == 3
    assert package.name == PACKAGE
    assert package.get_build_type() == 'ament_python'
    assert package.licenses, 'package.xml needs a <license>'
    assert all(m.email for m in package.maintainers)


def test_package_xml_declares_format_3_schema() -> None:
    text = (REPO / 'package.xml').read_text(encoding='utf-8')
    assert 'http://download.ros.org/schema/package_format3.xsd' in text
    assert package_xml().get('format') == '3'


def test_package_xml_version_matches_python_package() -> None:
    init = (REPO / PACKAGE / '__init__.py').read_text(encoding='utf-8')
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init, re.MULTILINE)
    assert match, f'{PACKAGE}/__init__.py has no __version__'
    assert package_xml().findtext('version') == match.group(1)


@pytest.mark.parametrize('tag, names', [
    ('exec_depend', ['rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
                     'python3-numpy', 'python3-opencv', 'python3-yaml']),
    ('test_depend', ['ament_flake8', 'ament_pep257', 'ament_xmllint', 'launch_testing',
                     'launch_testing_ros', 'python3-pytest']),
])
def test_package_xml_dependencies(tag: str, names: list[str]) -> None:
    root = package_xml()
    declared = {element.text for element in root.findall(tag)}
    declared |= {element.text for element in root.findall('depend')}
    missing = sorted(set(names) - declared)
    assert not missing, f'package.xml lacks <{tag}> for {missing}'


def test_package_xml_lists_the_ros_messages_the_code_imports() -> None:
    """Every ROS interface package the code imports must be a declared dependency."""
    declared = {element.text for element in package_xml()
                if element.tag in ('depend', 'exec_depend')}
    imported: set[str] = set()
    pattern = re.compile(r'^\s*(?:from|import)\s+(\w+_(?:msgs|interfaces))\b', re.MULTILINE)
    for source in (REPO / PACKAGE).rglob('*.py'):
        imported |= set(pattern.findall(source.read_text(encoding='utf-8')))
    missing = sorted(imported - declared)
    assert not missing, f'imported but not declared in package.xml: {missing}'


def test_ament_resource_marker_matches_package_name() -> None:
    marker = REPO / 'resource' / PACKAGE
    assert marker.is_file(), 'resource/recon3d_ros is the ament index marker setup.py installs'


@pytest.mark.skipif(shutil.which('xmllint') is None,
                    reason='xmllint (libxml2-utils) is not installed on this machine')
def test_package_xml_well_formed_per_xmllint() -> None:
    result = subprocess.run(['xmllint', '--noout', str(REPO / 'package.xml')],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, 'XML_CATALOG_FILES': ''})
    assert result.returncode == 0, result.stderr
