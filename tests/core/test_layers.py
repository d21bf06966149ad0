"""The layers' contracts, read from the source: who may import whom, no cycles, no big modules.

Each contract is checked on every product module (``racetrack_core``, ``racetrack_plugins``,
``cli/racetrack_cli``; not tests, not migrations), counting every import: at the top, inside a
function, and under ``if TYPE_CHECKING:``. A contract that lets lazy imports through says so.
docs/development.md draws the layers and names these tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from racetrack_plugins.python3.packaging import WRAPPER_DEPENDENCIES

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "racetrack_core": REPO / "racetrack_core",
    "racetrack_plugins": REPO / "racetrack_plugins",
    "racetrack_cli": REPO / "cli" / "racetrack_cli",
}
MAX_LINES = 400

#: The modules that make up the servers, which the CLI may import only when a command runs.
SERVER_MODULES = (
    "racetrack_core.lifecycle",
    "racetrack_core.pub",
    "racetrack_core.dashboard",
    "racetrack_core.storage",
    "racetrack_core.server",
    "racetrack_plugins",
)

#: Import cycles that other work in progress removes; each names who removes it. Delete an
#: entry when its cycle is gone: the test fails on an entry that no longer matches a cycle.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as an absolute dotted name, and where it runs."""

    importer: str
    target: str
    line: int
    lazy: bool  # inside a function: runs when the function is called
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs

    @property
    def at_import_time(self) -> bool:
        return not self.lazy and not self.type_checking

    def __str__(self) -> str:
        when = " (lazy)" if self.lazy else " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.importer}:{self.line} imports {self.target}{when}"


def product_sources() -> dict[str, str]:
    """Every product module's dotted name and source."""
    sources: dict[str, str] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def imports_of(name: str, source: str, is_package: bool = False) -> list[Import]:
    """The imports of one module's source (relative ones made absolute)."""
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, node.lineno, lazy, type_checking))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            found.append(Import(name, base, node.lineno, lazy, type_checking))
            for alias in node.names:  # ``from pkg import module`` imports pkg.module too
                found.append(Import(name, f"{base}.{alias.name}", node.lineno, lazy, type_checking))
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            child_tc = type_checking or (
                isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)
                and child in node.body
            )
            visit(child, child_lazy, child_tc)

    visit(ast.parse(source), lazy=False, type_checking=False)
    return found


def all_imports(sources: Mapping[str, str]) -> list[Import]:
    found: list[Import] = []
    for name, source in sources.items():
        is_package = name in PACKAGES or any(other.startswith(name + ".") for other in sources)
        found.extend(imports_of(name, source, is_package))
    return found


def within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


Rule = Callable[[Import], bool]
"""A contract: True for an import that breaks it."""


def core_imports_plugin_or_cli(imp: Import) -> bool:
    return within(imp.importer, ["racetrack_core"]) and within(
        imp.target, ["racetrack_plugins", "racetrack_cli"]
    )


WRAPPER = "racetrack_plugins.python3.wrapper"
WRAPPER_ALLOWED = {
    *sys.stdlib_module_names,
    "__future__",
    *(dependency.replace("-", "_") for dependency in WRAPPER_DEPENDENCIES),
}


def wrapper_imports_outside_itself(imp: Import) -> bool:
    if not within(imp.importer, [WRAPPER]):
        return False
    return not within(imp.target, [WRAPPER]) and imp.target.split(".")[0] not in WRAPPER_ALLOWED


def dashboard_imports_lifecycle_or_storage(imp: Import) -> bool:
    return within(imp.importer, ["racetrack_core.dashboard"]) and within(
        imp.target, ["racetrack_core.lifecycle", "racetrack_core.storage"]
    )


def pub_imports_lifecycle_storage_or_dashboard(imp: Import) -> bool:
    return within(imp.importer, ["racetrack_core.pub"]) and within(
        imp.target,
        ["racetrack_core.lifecycle", "racetrack_core.storage", "racetrack_core.dashboard"],
    )


def cli_imports_a_server_at_import_time(imp: Import) -> bool:
    return (
        within(imp.importer, ["racetrack_cli"])
        and imp.at_import_time
        and within(imp.target, SERVER_MODULES)
    )


def pytest_outside_the_testing_package(imp: Import) -> bool:
    return within(imp.target, ["pytest", "_pytest"]) and not within(
        imp.importer, ["racetrack_core.testing"]
    )


CONTRACTS: dict[str, Rule] = {
    "the core imports no built-in plugin and no CLI module": core_imports_plugin_or_cli,
    "the python3 wrapper imports only itself, the standard library and its dependencies": (
        wrapper_imports_outside_itself
    ),
    "the Dashboard reaches Lifecycle only over its API": dashboard_imports_lifecycle_or_storage,
    "Pub reaches Lifecycle only over its API": pub_imports_lifecycle_storage_or_dashboard,
    "the CLI imports no server module when it starts": cli_imports_a_server_at_import_time,
    "only racetrack_core.testing imports pytest": pytest_outside_the_testing_package,
}


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports(product_sources())


@pytest.mark.parametrize("contract", list(CONTRACTS))
def test_contract_holds(imports: list[Import], contract: str) -> None:
    broken = [str(imp) for imp in imports if CONTRACTS[contract](imp)]
    assert broken == [], f"{contract}, but:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("contract", "module", "source"),
    [
        (
            "the core imports no built-in plugin and no CLI module",
            "racetrack_core.x",
            ("def f():\n    from racetrack_cli import main\n"),
        ),
        (
            "the core imports no built-in plugin and no CLI module",
            "racetrack_core.testing.x",
            (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    import racetrack_plugins.golang\n"
            ),
        ),
        (
            "the python3 wrapper imports only itself, the standard library and its dependencies",
            f"{WRAPPER}.x",
            "from racetrack_core.errors import RacetrackError\n",
        ),
        (
            "the python3 wrapper imports only itself, the standard library and its dependencies",
            f"{WRAPPER}.x",
            "import httpx\n",
        ),
        (
            "the Dashboard reaches Lifecycle only over its API",
            "racetrack_core.dashboard.x",
            ("from racetrack_core.lifecycle.accounts import AUTH_HEADER\n"),
        ),
        (
            "the Dashboard reaches Lifecycle only over its API",
            "racetrack_core.dashboard.x",
            ("from ..storage import models\n"),
        ),
        (
            "Pub reaches Lifecycle only over its API",
            "racetrack_core.pub.x",
            "def f():\n    from racetrack_core.storage.models import Job\n",
        ),
        (
            "the CLI imports no server module when it starts",
            "racetrack_cli.x",
            ("from racetrack_core.lifecycle import create_app\n"),
        ),
        (
            "only racetrack_core.testing imports pytest",
            "racetrack_core.manifest",
            "import pytest\n",
        ),
    ],
)
def test_a_new_import_that_breaks_a_contract_is_caught(
    contract: str, module: str, source: str
) -> None:
    assert [imp for imp in imports_of(module, source) if CONTRACTS[contract](imp)]


def test_what_each_contract_lets_through() -> None:
    allowed = [
        (
            "racetrack_core.x",
            "import subprocess\nsubprocess.run(['python', '-m', 'racetrack_cli'])\n",
        ),
        (f"{WRAPPER}.x", "from .app import create_app\nimport starlette.routing\nimport json\n"),
        ("racetrack_core.dashboard.x", "from racetrack_core.wire import AUTH_HEADER\n"),
        ("racetrack_cli.x", "def up():\n    from racetrack_core.server import serve\n"),
        ("racetrack_core.testing.plugin", "import pytest\n"),
    ]
    for module, source in allowed:
        broken = [
            (name, str(imp))
            for imp in imports_of(module, source)
            for name, rule in CONTRACTS.items()
            if rule(imp)
        ]
        assert broken == []


def test_starting_the_cli_loads_no_server_module() -> None:
    code = "import sys, racetrack_cli.main\nprint('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [name for name in loaded if within(name, SERVER_MODULES)] == []


# -- cycles ----------------------------------------------------------------------------------


def import_cycles(imports: Iterable[Import], modules: Iterable[str]) -> list[frozenset[str]]:
    """Groups of modules that import one another (TYPE_CHECKING and lazy imports count).

    A module's import of its own parent package does not count: Python imports parents first.
    """
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports:
        target = imp.target
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != imp.importer and not imp.importer.startswith(target + "."):
            graph[imp.importer].add(target)
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
                        cycles.append(frozenset(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return cycles


def test_no_import_cycle_beyond_the_known_ones(imports: list[Import]) -> None:
    cycles = import_cycles(imports, product_sources())
    unknown = [sorted(cycle) for cycle in cycles if cycle not in KNOWN_CYCLES]
    assert unknown == []
    gone = [owner for cycle, owner in KNOWN_CYCLES.items() if cycle not in cycles]
    assert gone == [], "a known cycle is gone: delete its entry in KNOWN_CYCLES"


def test_a_cycle_hidden_behind_type_checking_is_found() -> None:
    sources = {
        "racetrack_core.a": "from racetrack_core.b import B\n",
        "racetrack_core.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from racetrack_core.a import A\n",
    }
    found = import_cycles(all_imports(sources), sources)
    assert found == [frozenset({"racetrack_core.a", "racetrack_core.b"})]


# -- size ------------------------------------------------------------------------------------


def test_no_product_module_is_over_400_lines() -> None:
    sizes = {name: len(source.splitlines()) for name, source in product_sources().items()}
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert too_long == {}, f"split these modules (one concept each) under {MAX_LINES} lines"
