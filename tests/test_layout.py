"""The shape of the code: no import cycles, small modules, nothing global changed by an import.

They read the source of ``flask_psp_connector`` and ``demo_shop`` (the module graph from
``ast``) or import it in a fresh interpreter, so they hold for modules no other test
reaches.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flask_psp_connector", "demo_shop")
#: The most lines a module may have: past that it holds more than one concern.
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted name → source file of every module of the packages (a package is its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree``, at any depth (inside functions too), except those
    under ``if TYPE_CHECKING:``, which never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking_block(node):
            for child in node.orelse:
                yield from _imports(child)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The modules of the packages that ``node`` (in ``module``) makes Python run.

    ``from package import name`` imports the module ``package.name`` when there is one,
    else the package itself. A package's ``__init__`` has always run before its
    submodules, so importing a submodule does not count as importing its package.
    """
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    found = set()
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            found.add(f"{base}.{alias.name}")
        elif base in known:
            found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the packages it imports, anywhere in its source."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {target for node in _imports(tree) for target in _imported(module, path, node, known)} - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each group of modules that import one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:
        # Tarjan's strongly connected components, with an explicit stack (no recursion limit).
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_cycle_through(min(group), graph, group) for group in groups]


def _cycle_through(start: str, graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while (before := previous[path[-1]]) is not None:
                        path.append(before)
                    return [*reversed(path), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a cycle but no path leads back to it")


def test_cycles_are_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_function_local_and_relative_imports_count_but_type_checking_ones_do_not(tmp_path: Path) -> None:
    source = """
from typing import TYPE_CHECKING
from . import sibling
if TYPE_CHECKING:
    from flask_psp_connector.extension import ConnectorState
def later():
    from flask_psp_connector.errors import PSPError
"""
    tree = ast.parse(source)
    known = {"demo_shop.sibling", "flask_psp_connector.extension", "flask_psp_connector.errors"}
    found = {target for node in _imports(tree) for target in _imported("demo_shop.cart", tmp_path / "cart.py", node, known)}
    assert found == {"demo_shop.sibling", "flask_psp_connector.errors"}


def test_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "Import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_module_over_the_line_limit() -> None:
    lengths = {module: len(path.read_text(encoding="utf-8").splitlines()) for module, path in _modules().items()}
    too_long = sorted((module, length) for module, length in lengths.items() if length > MAX_LINES)
    assert not too_long, f"Modules over {MAX_LINES} lines: " + ", ".join(f"{m} ({n})" for m, n in too_long)


def _libraries() -> list[str]:
    """The modules outside the packages that the packages import (absolute imports)."""
    names = set()
    for path in _modules().values():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif node.module and not node.level:
                names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in PACKAGES)


#: Run in a fresh interpreter: import every module and report what changed globally.
_IMPORT_EVERYTHING = r"""
import importlib, json, logging, os, sys, types, warnings

import flask
import stripe

modules = json.loads(sys.argv[1])
plain = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)

def stripe_settings():
    return {name: repr(value) for name, value in vars(stripe).items()
            if not name.startswith("__") and not isinstance(value, plain)}

def logging_state():
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    return {logger.name: [logger.level, [repr(h) for h in logger.handlers], logger.propagate,
                          [repr(f) for f in logger.filters]]
            for logger in loggers if logger.handlers or logger.filters or logger.level or not logger.propagate}

# What the libraries do to themselves when first imported (authlib adds a warnings filter,
# SQLAlchemy sets its logger's level) is theirs: they are imported before the snapshot.
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
before = {"stripe": stripe_settings(), "environ": dict(os.environ), "logging": logging_state(),
          "warnings": [repr(f) for f in warnings.filters], "path": list(sys.path)}
for name in modules:
    importlib.import_module(name)
after = {"stripe": stripe_settings(), "environ": dict(os.environ), "logging": logging_state(),
         "warnings": [repr(f) for f in warnings.filters], "path": list(sys.path)}
changes = []
for kind in before:
    if before[kind] != after[kind]:
        if isinstance(before[kind], dict):
            changed = sorted(k for k in before[kind].keys() | after[kind].keys() if before[kind].get(k) != after[kind].get(k))
            changes.append(f"{kind}: {', '.join(changed)}")
        else:
            changes.append(f"{kind} changed")
hooks = ("error_handler_spec", "before_request_funcs", "after_request_funcs", "teardown_request_funcs",
         "template_context_processors", "url_value_preprocessors", "url_default_functions")

fresh = flask.Blueprint("fresh", "fresh")

def filled(blueprint):
    held = [f"{len(blueprint.deferred_functions)} deferred registration(s)"] if blueprint.deferred_functions else []
    held += [hook for hook in hooks if getattr(blueprint, hook) != getattr(fresh, hook)]
    return held

blueprints = {id(value): value for name in modules for value in vars(sys.modules[name]).values()
              if isinstance(value, flask.Blueprint) and filled(value)}
for blueprint in sorted(blueprints.values(), key=lambda b: (b.import_name, b.name)):
    changes.append(f"{blueprint.import_name}: module-level Blueprint {blueprint.name!r} holding "
                   + ", ".join(filled(blueprint)))
print(json.dumps(changes))
"""


def _global_changes(modules: list[str], libraries: list[str], path: Path = ROOT) -> list[str]:
    """What importing ``modules`` (after ``libraries``) in a fresh interpreter changes globally."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING, json.dumps(modules), json.dumps(libraries)],
                            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    changes: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return changes


def test_importing_every_module_changes_nothing_global() -> None:
    """No import sets Stripe's module settings, the environment, logging, warnings or the
    import path, and no module-level Blueprint collects routes or hooks at import."""
    # The entry points run a server or the shop when imported: they are run, not imported.
    # Alembic runs a migration folder's env.py and revisions itself, inside its own context.
    modules = [name for name in _modules() if not name.endswith(".__main__") and ".migrations" not in name]
    changes = _global_changes(modules, _libraries())
    assert not changes, "Importing the packages changed global state:\n" + "\n".join(changes)


def test_the_import_check_sees_what_a_module_changes(tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text("""
import logging, os, flask, stripe
stripe.api_key = "sk_test_set_at_import"
os.environ["LEAKY"] = "1"
logging.getLogger("leaky").addHandler(logging.NullHandler())
bp = flask.Blueprint("leaky", __name__)
bp.add_url_rule("/", view_func=lambda: "")
""")
    changes = _global_changes(["leaky"], ["flask", "stripe"], tmp_path)
    assert changes == ["stripe: api_key", "environ: LEAKY", "logging: leaky",
                       "leaky: module-level Blueprint 'leaky' holding 1 deferred registration(s)"]
