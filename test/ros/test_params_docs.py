"""The README's parameter table and config/recon3d.yaml say what ``PARAMS`` declares.

``recon3d_ros/ros/params.py`` is where a parameter is declared; the README documents it and
the shipped params file writes out its default. Both are read here as their readers would (the
table cell by cell, the file with a YAML parser) and compared with ``PARAMS`` entry by entry:
the same names, types, defaults, ranges, choices and run-time flags, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from recon3d_ros.ros.params import PARAMS, ParamSpec

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PARAMS_FILE = REPO / "config" / "recon3d.yaml"
NODE_KEY = "/**/depth_node"
COLUMNS = ["name", "type", "default", "range / choices", "run time", "meaning"]
# The README's type words, and the Python type rclpy gives each parameter kind.
TYPES = {"string": str, "int": int, "double": float, "bool": bool, "double[16]": list}
# Written by hand (not taken from params.py): what the README's "identity" stands for.
IDENTITY = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
SPECS = {spec.name: spec for spec in PARAMS}


@dataclass(frozen=True)
class Row:
    """One parameter's line of the README table (a line naming two gives two rows)."""

    line: int
    kind: str
    default: str
    limits: str
    run_time: str


def readme_rows(text: str) -> dict[str, Row]:
    """Parse the table of the "## Parameters" section: parameter name -> its cells."""
    lines = text.splitlines()
    start = lines.index("## Parameters")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    table = [(i + 1, line) for i, line in enumerate(lines[start:end], start)
             if line.startswith("|")]
    assert table, "no table in the README's Parameters section"
    header = [cell.strip() for cell in table[0][1].strip("|").split("|")]
    assert header == COLUMNS, header
    rows: dict[str, Row] = {}
    for number, line in table[2:]:  # past the header and its |---| line
        # The meaning (last column) is free text: split off the first five cells only.
        cells = [cell.strip() for cell in line.strip().strip("|").split("|", 5)]
        assert len(cells) == 6, f"README.md:{number}: {len(cells)} cells"
        names = [name.strip() for name in cells[0].split("/")]
        assert all(re.fullmatch(r"`\w+`", name) for name in names), \
            f"README.md:{number}: {cells[0]!r} is not `name` or `name` / `name`"
        for name in names:
            assert name.strip("`") not in rows, f"README.md:{number}: {name} listed twice"
            rows[name.strip("`")] = Row(number, *cells[1:5])
    return rows


def readme_value(cell: str, kind: str) -> Any:
    """Return the default a README cell writes, as a value of the parameter's kind."""
    text = cell.strip()
    if kind == "string":
        assert re.fullmatch(r"`[^`]*`", text), f"string default {text!r} not in backticks"
        text = text.strip("`")
        return "" if text == '""' else text
    if kind == "bool":
        assert text in ("true", "false"), text
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "double":
        return float(text)
    assert text == "identity", text
    return IDENTITY


def readme_range(cell: str) -> tuple[float, float] | None:
    """``[lo, hi]`` at the start of a range cell (a unit may follow), else None."""
    match = re.match(r"\[\s*([-+0-9.e]+)\s*,\s*([-+0-9.e]+)\s*\]", cell.strip())
    return (float(match.group(1)), float(match.group(2))) if match else None


def same(value: Any, default: Any) -> bool:
    """Equal and of the same kind: ``1`` is not a double's ``1.0``, nor ``True`` an int."""
    if isinstance(default, list):
        return isinstance(value, list) and len(value) == len(default) \
            and all(type(v) is float and v == d for v, d in zip(value, default))
    if isinstance(default, float):
        return type(value) is float and math.isclose(value, default, rel_tol=0, abs_tol=0)
    return type(value) is type(default) and value == default


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    return readme_rows(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    document = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    assert list(document) == [NODE_KEY], list(document)
    assert list(document[NODE_KEY]) == ["ros__parameters"]
    return document[NODE_KEY]["ros__parameters"]


def test_the_readme_table_names_every_parameter_once(rows: dict[str, Row]) -> None:
    assert sorted(set(SPECS) - set(rows)) == [], "in PARAMS, not in the README"
    assert sorted(set(rows) - set(SPECS)) == [], "in the README, not in PARAMS"


@pytest.mark.parametrize("spec", PARAMS, ids=lambda spec: spec.name)
def test_the_readme_row_matches_the_declaration(rows: dict[str, Row], spec: ParamSpec) -> None:
    row = rows[spec.name]
    where = f"README.md:{row.line} ({spec.name})"
    assert row.kind in TYPES, f"{where}: type {row.kind!r}"
    assert TYPES[row.kind] is type(spec.default), f"{where}: type {row.kind}"
    value = readme_value(row.default, row.kind)
    assert same(value, spec.default), f"{where}: default {row.default} != {spec.default!r}"
    assert row.run_time == ("no" if spec.read_only else "yes"), f"{where}: run time"
    # A range is documented exactly when one is declared (rclpy enforces it).
    expected_range = None if spec.value_range is None else \
        tuple(float(v) for v in spec.value_range)
    assert readme_range(row.limits) == expected_range, \
        f"{where}: range {row.limits!r} != {spec.value_range}"
    if spec.choices is not None:
        listed = [choice.strip() for choice in row.limits.split(",")]
        assert listed == list(spec.choices), f"{where}: choices {listed} != {spec.choices}"


def test_the_params_file_sets_exactly_the_parameters(shipped: dict[str, Any]) -> None:
    assert sorted(set(SPECS) - set(shipped)) == [], "in PARAMS, not in config/recon3d.yaml"
    assert sorted(set(shipped) - set(SPECS)) == [], "in config/recon3d.yaml, not in PARAMS"


@pytest.mark.parametrize("spec", PARAMS, ids=lambda spec: spec.name)
def test_the_params_file_writes_the_default(shipped: dict[str, Any], spec: ParamSpec) -> None:
    # Of the same type too: ROS parameters are strictly typed, `1` cannot set a double.
    value = shipped[spec.name]
    assert same(value, spec.default), f"{spec.name}: {value!r} != default {spec.default!r}"


def test_the_readme_values_are_read_as_written() -> None:
    # The parsers above, on cells written by hand: a wrong default must not slip through.
    assert readme_value('`""`', "string") == "" and readme_value("`raw`", "string") == "raw"
    assert readme_value("0.05", "double") == 0.05 and readme_value("33177600", "int") == 33177600
    assert readme_value("false", "bool") is False
    assert readme_range("[0, 10] s") == (0.0, 10.0)
    assert readme_range("[1e-6, 1e6]") == (1e-6, 1e6)
    assert readme_range("preset or file") is None
    assert not same(1, 1.0) and not same(True, 1) and not same(0.2, 0.25)
    assert same([float(v) for v in IDENTITY], IDENTITY) and not same([1, 0], [1.0, 0.0])
