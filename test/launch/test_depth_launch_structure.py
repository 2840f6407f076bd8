"""Static checks of launch/depth.launch.py that need neither launch nor launch_ros.

The launch file is parsed with ``ast`` and compared with the code it launches: every argument
it reads is declared, it remaps exactly the node's relative topics of
:mod:`recon3d_ros.ros.topics` (and node.py names no topic but through that module), the
parameter overrides are real node parameters passed only when given, the params file applies
to the node's name in any namespace, and rviz2 is checked for before any process is created.
The launch file's ``remappings=`` expressions are evaluated with a stand-in for
``LaunchConfiguration``, so what is checked is what the launch file hands to launch_ros.
What the launch file's helpers decide is tested in test/ros/test_launch_support.py; the
behaviour under a real ``launch`` by test_depth_launch.py where launch_testing is installed.
"""

from __future__ import annotations

import ast
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from recon3d_ros.ros import topics
from recon3d_ros.ros.launch_support import NODE_ARGUMENTS, OVERRIDE_ARGUMENTS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "depth.launch.py"
NODE_MODULE = REPO / "recon3d_ros" / "ros" / "node.py"
PARAMS_MODULE = REPO / "recon3d_ros" / "ros" / "params.py"
PARAMS_FILE = REPO / "config" / "recon3d.yaml"
RVIZ_FILE = REPO / "config" / "recon3d.rviz"
TOPIC_ARGUMENT_NAMES = {argument.name for argument in topics.TOPIC_ARGUMENTS}

REQUIRED_ARGUMENTS = {"namespace", "image_topic", "camera_info_topic", "model", "device",
                      "backend", "params_file", "use_rviz"}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = <literal>`` assignments, used to resolve names in calls."""
    constants: dict[str, Any] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                try:
                    constants[target.id] = ast.literal_eval(statement.value)
                except ValueError:
                    pass
    return constants


def resolve(node: ast.AST, constants: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return ast.literal_eval(node)


def calls_to(tree: ast.AST, name: str) -> list[ast.Call]:
    """Return the calls of ``name(...)`` or ``obj.name(...)`` anywhere in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                found.append(node)
    return found


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def launch_configuration_name(node: ast.AST) -> str | None:
    """``'x'`` for ``LaunchConfiguration('x')``, else None (also for a non-literal name)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LaunchConfiguration" \
            and isinstance(node.args[0], ast.Constant):
        return node.args[0].value
    return None


def configurations_read_in_loops(tree: ast.Module) -> set[str]:
    """Names read by ``LaunchConfiguration(name) ... for name in NODE_ARGUMENTS``.

    And by ``remappings(LaunchConfiguration[, NAMES])`` of recon3d_ros.ros.topics: the topic
    arguments (all, or those of ``NAMES``).
    """
    names: set[str] = set()
    constants = module_constants(tree)
    for call in calls_to(tree, "remappings"):
        if call.args and getattr(call.args[0], "id", None) == "LaunchConfiguration":
            names |= set(resolve(call.args[1], constants)) if len(call.args) > 1 \
                else TOPIC_ARGUMENT_NAMES
    for node in ast.walk(tree):
        if isinstance(node, (ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            for generator in node.generators:
                if isinstance(generator.iter, ast.Name) \
                        and generator.iter.id == "NODE_ARGUMENTS" \
                        and any(isinstance(call.args[0], ast.Name)
                                and call.args[0].id == generator.target.id
                                for call in calls_to(node, "LaunchConfiguration")):
                    names |= set(NODE_ARGUMENTS)
    return names


def function(tree: ast.Module, name: str) -> ast.FunctionDef:
    matches = [node for node in tree.body if isinstance(node, ast.FunctionDef)
               and node.name == name]
    assert len(matches) == 1, f"no function {name} in {LAUNCH_FILE.name}"
    return matches[0]


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return parse(LAUNCH_FILE)


def row_field(node: ast.AST | None, row: str) -> str | None:
    """``'x'`` for ``<row>.x``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id == row:
        return node.attr
    return None


def table_declarations(tree: ast.Module) -> dict[str, ast.Call]:
    """Arguments declared by a comprehension over the topic table, name -> the one call.

    The call must be ``DeclareLaunchArgument(a.name, default_value=a.topic,
    description=a.description) for a in TOPIC_ARGUMENTS`` (recon3d_ros.ros.topics).
    """
    found: dict[str, ast.Call] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)) \
                and isinstance(node.elt, ast.Call) \
                and getattr(node.elt.func, "id", None) == "DeclareLaunchArgument":
            (generator,) = node.generators
            assert getattr(generator.iter, "id", None) == "TOPIC_ARGUMENTS"
            row, call = generator.target.id, node.elt
            fields = [row_field(call.args[0], row),
                      row_field(keyword(call, "default_value"), row),
                      row_field(keyword(call, "description"), row)]
            assert fields == ["name", "topic", "description"], ast.unparse(call)
            found.update(dict.fromkeys(TOPIC_ARGUMENT_NAMES, call))
    return found


@pytest.fixture(scope="module")
def declared(launch_tree: ast.Module) -> dict[str, ast.Call]:
    constants = module_constants(launch_tree)
    table = table_declarations(launch_tree)
    literal = {resolve(call.args[0], constants): call
               for call in calls_to(launch_tree, "DeclareLaunchArgument")
               if call not in table.values()}
    assert not set(literal) & set(table), "topic arguments declared twice"
    return {**literal, **table}


def declared_default(name: str, declared: dict[str, ast.Call]) -> str:
    """Return a launch argument's default value, as launch would substitute it."""
    if name in TOPIC_ARGUMENT_NAMES:
        return next(a.topic for a in topics.TOPIC_ARGUMENTS if a.name == name)
    return ast.literal_eval(keyword(declared[name], "default_value"))


def evaluate_remappings(launch_tree: ast.Module, node_call: ast.Call,
                        configuration: Any) -> list[tuple[str, str]]:
    """Evaluate a Node's ``remappings=`` with ``LaunchConfiguration(name)`` = ``configuration``.

    The names it uses come from the launch file's own ``recon3d_ros`` imports and module
    constants. A target given as a list of parts (launch concatenates them) is joined.
    """
    namespace: dict[str, Any] = dict(module_constants(launch_tree))
    for statement in launch_tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module.startswith("recon3d_ros"):
            module = __import__(statement.module, fromlist=["_"])
            namespace.update({alias.asname or alias.name: getattr(module, alias.name)
                              for alias in statement.names})
    namespace["LaunchConfiguration"] = configuration
    expression = ast.Expression(keyword(node_call, "remappings"))
    pairs = eval(compile(expression, str(LAUNCH_FILE), "eval"), namespace)  # noqa: S307
    return [(source, "".join(target) if isinstance(target, list) else target)
            for source, target in pairs]


@pytest.fixture(scope="module")
def depth_node_call(launch_tree: ast.Module) -> ast.Call:
    constants = module_constants(launch_tree)
    matches = []
    for call in calls_to(launch_tree, "Node"):
        package, executable = keyword(call, "package"), keyword(call, "executable")
        if package is not None and executable is not None \
                and resolve(package, constants) == "recon3d_ros" \
                and resolve(executable, constants) == "depth_node":
            matches.append(call)
    assert len(matches) == 1, "expected one Node(package=recon3d_ros, executable=depth_node)"
    return matches[0]


CREATE_CALLS = ("create_publisher", "create_subscription")


def topic_argument(call: ast.Call) -> ast.expr | None:
    """Return the topic of ``create_publisher(type, topic, ...)`` / ``create_subscription``."""
    return call.args[1] if len(call.args) > 1 else keyword(call, "topic")


def topic_constant_names() -> set[str]:
    """Names of the topic constants of recon3d_ros.ros.topics (IMAGE, POINTS, ...)."""
    return {name for name in topics.__all__ if isinstance(getattr(topics, name), str)}


def node_parameters() -> set[str]:
    tree = parse(PARAMS_MODULE)
    constants = module_constants(tree)
    return {resolve(call.args[0], constants) for call in calls_to(tree, "ParamSpec")}


def test_launch_file_compiles() -> None:
    compile(LAUNCH_FILE.read_text(encoding="utf-8"), str(LAUNCH_FILE), "exec")


def test_defines_generate_launch_description(launch_tree: ast.Module) -> None:
    functions = {node.name: node for node in launch_tree.body
                 if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert not functions["generate_launch_description"].args.args


def test_declares_the_documented_arguments(declared: dict[str, ast.Call]) -> None:
    missing = sorted(REQUIRED_ARGUMENTS - set(declared))
    assert not missing, f"depth.launch.py does not declare {missing}"


def test_every_argument_has_a_default_and_a_description(declared: dict[str, ast.Call]) -> None:
    for name, call in declared.items():
        assert keyword(call, "default_value") is not None, f"{name} has no default_value"
        assert keyword(call, "description") is not None, f"{name} has no description"


def test_every_launch_configuration_is_declared(launch_tree: ast.Module,
                                                declared: dict[str, ast.Call]) -> None:
    used = {launch_configuration_name(node) for node in ast.walk(launch_tree)} - {None}
    used |= configurations_read_in_loops(launch_tree)
    undeclared = sorted(used - set(declared))
    assert not undeclared, f"LaunchConfiguration of undeclared arguments: {undeclared}"
    unused = sorted(set(declared) - used)
    assert not unused, f"declared but never used: {unused}"


def test_node_is_named_and_namespaced(depth_node_call: ast.Call) -> None:
    node_tree = parse(NODE_MODULE)
    assert ast.literal_eval(keyword(depth_node_call, "name")) == \
        module_constants(node_tree)["NODE_NAME"]
    assert launch_configuration_name(keyword(depth_node_call, "namespace")) == "namespace"


def test_node_names_every_topic_through_the_topics_module() -> None:
    tree = parse(NODE_MODULE)
    constants = topic_constant_names()
    used = set()
    for name in CREATE_CALLS:
        for call in calls_to(tree, name):
            topic = topic_argument(call)
            # A literal, or a variable handed in by a wrapper, would bypass the module.
            assert isinstance(topic, ast.Attribute) and isinstance(topic.value, ast.Name) \
                and topic.value.id == "topics" and topic.attr in constants, \
                f"{NODE_MODULE.name}:{call.lineno}: {name} topic {ast.unparse(topic)} is " \
                "not a recon3d_ros.ros.topics constant"
            used.add(getattr(topics, topic.attr))
    # Every constant is a topic of the node (the table lists no topic the node lacks).
    assert used == set(topics.INPUTS + topics.OUTPUTS)
    # Nor is a topic name written out elsewhere in node.py's code: as a string of its own (a
    # variable) or quoted in log text ("'scale/points'"), where a remapping would make it wrong.
    names = "|".join(re.escape(getattr(topics, name)) for name in constants)
    written = re.compile(rf"^({names})$|['`]({names})['`]")
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    literals = [(node.lineno, node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and id(node) not in docstrings
                and isinstance(node.value, str) and written.search(node.value)]
    assert not literals, f"topic names written out in {NODE_MODULE.name}: {literals}"


def test_remappings_are_exactly_the_nodes_relative_topics(launch_tree: ast.Module,
                                                          depth_node_call: ast.Call) -> None:
    pairs = evaluate_remappings(launch_tree, depth_node_call, lambda name: f"/given/{name}")
    sources = [source for source, _ in pairs]
    assert sorted(sources) == sorted(topics.RELATIVE), sources
    # Each topic follows its own argument (two topics never land on one name) ...
    targets = dict(pairs)
    assert len(set(targets.values())) == len(targets), targets
    assert targets[topics.IMAGE] == "/given/image_topic"
    assert targets[topics.IMAGE_COMPRESSED] == "/given/image_topic/compressed"
    assert targets[topics.CAMERA_INFO] == "/given/camera_info_topic"
    assert targets[topics.DEPTH_IMAGE] == "/given/depth_topic"
    assert targets[topics.POINTS] == "/given/points_topic"


def test_arguments_left_at_their_defaults_rename_nothing(launch_tree: ast.Module,
                                                         depth_node_call: ast.Call,
                                                         declared: dict[str, ast.Call]) -> None:
    pairs = evaluate_remappings(launch_tree, depth_node_call,
                                lambda name: declared_default(name, declared))
    assert all(source == target for source, target in pairs), pairs


def test_rviz_remaps_every_topic_it_displays(launch_tree: ast.Module) -> None:
    constants = module_constants(launch_tree)
    (rviz_call,) = [call for call in calls_to(launch_tree, "Node")
                    if resolve(keyword(call, "package"), constants) == "rviz2"]
    pairs = evaluate_remappings(launch_tree, rviz_call, lambda name: f"/given/{name}")
    displays = yaml.safe_load(RVIZ_FILE.read_text(encoding="utf-8"))[
        "Visualization Manager"]["Displays"]
    shown = {display["Topic"]["Value"] for display in displays if "Topic" in display}
    relative = {topic for topic in shown if not topic.startswith("/")}
    assert relative and relative <= set(topics.RELATIVE), relative
    assert relative <= {source for source, _ in pairs}, (relative, pairs)


def test_parameters_are_built_from_the_given_arguments(depth_node_call: ast.Call) -> None:
    # node_parameters() puts the params file first and then only the arguments given, so an
    # argument left at its default no longer overrides the file.
    parameters = keyword(depth_node_call, "parameters")
    assert isinstance(parameters, ast.Call) and parameters.func.id == "node_parameters"


def test_override_arguments_default_to_not_given(declared: dict[str, ast.Call]) -> None:
    for name in OVERRIDE_ARGUMENTS:
        default = ast.literal_eval(keyword(declared[name], "default_value"))
        assert default == "", f"{name} defaults to {default!r}: it would override the file"
    unknown = sorted(set(OVERRIDE_ARGUMENTS) - node_parameters())
    assert not unknown, f"not parameters of the node: {unknown}"


def test_default_params_file_applies_to_the_node_in_any_namespace() -> None:
    # `depth_node:` matches only /depth_node; `/**/depth_node:` also /front/depth_node
    # (test/config/test_recon3d_yaml.py shows it on a real node).
    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    node_name = module_constants(parse(NODE_MODULE))["NODE_NAME"]
    assert list(params) == [f"/**/{node_name}"]
    section = params[f"/**/{node_name}"]
    assert set(section["ros__parameters"]) <= node_parameters()


def test_processes_are_created_only_after_the_rviz_check(launch_tree: ast.Module) -> None:
    # Every Node is created in the OpaqueFunction, after find_package_executable(rviz2):
    # when rviz2 is missing, launch stops before the depth node exists (it used to be left
    # running, re-parented to init, after "package 'rviz2' not found").
    generate = function(launch_tree, "generate_launch_description")
    opaque = calls_to(generate, "OpaqueFunction")
    assert len(opaque) == 1 and keyword(opaque[0], "function").id == "start_nodes"
    assert not calls_to(generate, "Node")
    start_nodes = function(launch_tree, "start_nodes")
    constants = module_constants(launch_tree)
    (check,) = calls_to(start_nodes, "find_package_executable")
    assert [resolve(arg, constants) for arg in check.args] == ["rviz2", "rviz2"]
    nodes = calls_to(start_nodes, "Node")
    assert len(nodes) == len(calls_to(launch_tree, "Node")) == 2
    assert all(check.lineno < node.lineno for node in nodes)
    # The check runs exactly when rviz2 is asked for, by launch's own reading of use_rviz.
    (guard,) = [node for node in start_nodes.body if isinstance(node, ast.If)
                and check in ast.walk(node)]
    assert isinstance(guard.test, ast.Name)
    (condition,) = calls_to(start_nodes, "IfCondition")
    assert launch_configuration_name(condition.args[0]) == "use_rviz"
    assert not any(isinstance(node, ast.Try) for node in ast.walk(start_nodes))


def joined_paths(tree: ast.Module) -> set[tuple[str, ...]]:
    """Constant tails of ``os.path.join(share, 'a', 'b')`` calls, e.g. ('config', 'x.yaml')."""
    tails = set()
    for call in calls_to(tree, "join"):
        tail = tuple(arg.value for arg in call.args
                     if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
        tails.add(tail)
    return tails


def test_defaults_come_from_the_installed_share_directory(launch_tree: ast.Module) -> None:
    constants = module_constants(launch_tree)
    lookups = calls_to(launch_tree, "get_package_share_directory")
    assert [resolve(call.args[0], constants) for call in lookups] == ["recon3d_ros"]
    tails = joined_paths(launch_tree)
    assert ("config", "recon3d.yaml") in tails and ("config", "recon3d.rviz") in tails
    assert (REPO / "config" / "recon3d.yaml").is_file()
    assert (REPO / "config" / "recon3d.rviz").is_file()


def test_rviz_is_optional_and_uses_the_packaged_config(launch_tree: ast.Module) -> None:
    constants = module_constants(launch_tree)
    rviz_calls = [call for call in calls_to(launch_tree, "Node")
                  if resolve(keyword(call, "package"), constants) == "rviz2"]
    assert len(rviz_calls) == 1
    # Created only past `if not use_rviz: return [depth_node]`.
    start_nodes = function(launch_tree, "start_nodes")
    early_returns = [node for node in start_nodes.body if isinstance(node, ast.If)
                     and isinstance(node.test, ast.UnaryOp)
                     and isinstance(node.test.op, ast.Not)
                     and isinstance(node.body[0], ast.Return)]
    assert early_returns and early_returns[0].lineno < rviz_calls[0].lineno
    arguments = keyword(rviz_calls[0], "arguments")
    assert [launch_configuration_name(element) for element in arguments.elts] == \
        [None, "rviz_config", None, "rviz_fixed_frame"]
