"""Static checks of launch/depth.launch.py that need neither launch nor launch_ros.

The launch file is parsed with ``ast`` and compared with the code it launches: every argument
it reads is declared, the remapped names are the node's own (relative) topic names, the
parameter overrides are real node parameters passed only when given, the params file applies
to the node's name in any namespace, and rviz2 is checked for before any process is created.
What the launch file's helpers decide is tested in test/ros/test_launch_support.py; the
behaviour under a real ``launch`` by test_depth_launch.py where launch_testing is installed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon3d_ros.ros.launch_support import NODE_ARGUMENTS, OVERRIDE_ARGUMENTS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "depth.launch.py"
NODE_MODULE = REPO / "recon3d_ros" / "ros" / "node.py"
PARAMS_MODULE = REPO / "recon3d_ros" / "ros" / "params.py"
PARAMS_FILE = REPO / "config" / "recon3d.yaml"

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


def configurations_read_in_loops(tree: ast.AST) -> set[str]:
    """Names read by ``LaunchConfiguration(name) ... for name in NODE_ARGUMENTS``."""
    names: set[str] = set()
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


@pytest.fixture(scope="module")
def declared(launch_tree: ast.Module) -> dict[str, ast.Call]:
    constants = module_constants(launch_tree)
    return {resolve(call.args[0], constants): call
            for call in calls_to(launch_tree, "DeclareLaunchArgument")}


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


def topic_argument(call: ast.Call, position: int) -> ast.expr | None:
    return call.args[position] if len(call.args) > position else keyword(call, "topic")


def topic_forwarders(tree: ast.Module) -> dict[ast.FunctionDef, int]:
    """Methods that pass their own ``topic`` argument on to create_publisher/subscription.

    Maps each to the index of that argument in a call (``self`` not counted), so that a
    subscription made through a wrapper (e.g. one adding event callbacks) still counts.
    """
    forwarders = {}
    for function_def in ast.walk(tree):
        if isinstance(function_def, ast.FunctionDef):
            arguments = [arg.arg for arg in function_def.args.args if arg.arg != "self"]
            for call in (c for name in CREATE_CALLS for c in calls_to(function_def, name)):
                topic = topic_argument(call, 1)
                if isinstance(topic, ast.Name) and topic.id in arguments:
                    forwarders[function_def] = arguments.index(topic.id)
    return forwarders


def node_topics() -> set[str]:
    """Topic names the depth node passes to create_publisher / create_subscription."""
    tree = parse(NODE_MODULE)
    constants = module_constants(tree)
    forwarders = topic_forwarders(tree)
    inside_forwarders = {id(call) for function_def in forwarders for name in CREATE_CALLS
                         for call in calls_to(function_def, name)}
    positions = dict.fromkeys(CREATE_CALLS, 1)
    positions.update({function_def.name: index for function_def, index in forwarders.items()})
    topics = set()
    for name, position in positions.items():
        for call in calls_to(tree, name):
            if id(call) in inside_forwarders:
                continue  # the wrapper's own argument: its callers name the topic
            topic = topic_argument(call, position)
            assert topic is not None, f"{name} call without a topic in {NODE_MODULE.name}"
            topics.add(resolve(topic, constants))
    return topics


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


def test_remappings_are_the_nodes_relative_topics(depth_node_call: ast.Call) -> None:
    remappings = keyword(depth_node_call, "remappings")
    assert isinstance(remappings, ast.List)
    sources = [ast.literal_eval(pair.elts[0]) for pair in remappings.elts]
    assert all(not name.startswith(("/", "~")) for name in sources), sources
    topics = node_topics()
    unknown = sorted(set(sources) - topics)
    assert not unknown, f"remapped names the node does not use: {unknown}; node uses {topics}"
    relative = {topic for topic in topics if not topic.startswith("/")}
    not_remappable = sorted(relative - set(sources))
    assert not not_remappable, f"node topics the launch file cannot remap: {not_remappable}"


def test_image_and_camera_info_remap_to_their_arguments(depth_node_call: ast.Call) -> None:
    remappings = keyword(depth_node_call, "remappings")
    targets = {ast.literal_eval(pair.elts[0]): launch_configuration_name(pair.elts[1])
               for pair in remappings.elts}
    assert targets["image"] == "image_topic"
    assert targets["camera_info"] == "camera_info_topic"


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
