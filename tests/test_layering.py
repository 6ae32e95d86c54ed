"""The dependency rule (DESIGN.md), enforced: every module's imports are read with `ast`,
at module level and inside functions, and checked against the layers below.

A *unit* is a package directly under `memcloud` (`memcloud.api` with all its modules) or a
module directly under it (`memcloud.service`); `memcloud/__init__.py` is the unit `memcloud`.

The layers, bottom to top. A unit imports units of its own layer and of the layers below,
never above; and no two units import each other, directly or round a cycle:

  0. bottom: `protocol` (sans-IO parsers: the standard library and itself, nothing else)
     and `storage` (per-cache LRU, limits, counters: nothing of ours but itself).
  1. foundations: `memcloud` (the version; picks compiled or pure data-plane modules),
     `native`, `clock`, `config`, `options` (the settings' field metadata), `adminlink`
     (the operator socket's path), `tls`, `stats` (stat names, aggregation, counter
     arithmetic and the `stats` replies; it reads storage's counters).
  2. `control`: the control store's interface, records, secrets and the SQLite store. It
     sits below the seam because the seam's `Directory` is built from its records (and
     `Directory.load(store)` reads them); it imports nothing of the seam.
  2a. `cluster`: the node-to-node channel (cluster secret, mutual TLS derived from it,
     frames, server, pooled links); the seam's forwarding and the server ride on it.
  3. the session seam and the node: `auth` (Directory, Principal), `gate` (the one
     command gate), `auth_throttle`,
     `admission`, `service`, `text_session`, `meta_session`, `binary_session`, `nodes`
     (this node and the others, behind one interface), `deployment` (every node as one:
     the single path for flush, stats and reset), `bootstrap` (the first start).
  3a. `alerts`: evaluating alerts over the deployment's stats, and delivering them.
  4. `webauth`: sign-in on the HTTP paths (the login throttle's guard), shared by the API,
     the dashboard and provisioning.
  5. `dashboard`: its pages get everything through `DashboardContext`, never from the API.
  6. `provisioning`: the partner API and SSO, which open dashboard sessions.
  7. `api`: the HTTP API. `api.app` is the composition root of the HTTP side (the API, then
     the dashboard and provisioning, with the dashboard's context built from the API's):
     only `api.server`, which serves it, imports it.
  8. `server`: the memcache transport and the node's runtime (which starts the API).
  9. top: `cli` and `testing` (the test harness).

Imports are made at module level: an import inside a function (or through importlib)
hides a dependency from the reader and from this test, so only those in DEFERRED_IMPORTS
are accepted, each with its reason. A new unit must be placed in a layer before it passes.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "memcloud"
SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("bottom", frozenset({"memcloud.protocol", "memcloud.storage"})),
    (
        "foundations",
        frozenset(
            {
                "memcloud",
                "memcloud.native",
                "memcloud.clock",
                "memcloud.placement",
                "memcloud.routing",
                "memcloud.config",
                "memcloud.plans",
                "memcloud.options",
                "memcloud.stats",
                "memcloud.introspection",
                "memcloud.adminlink",
                "memcloud.locate",
                "memcloud.ports",
                "memcloud.tls",
                "memcloud.logs",
            }
        ),
    ),
    ("control", frozenset({"memcloud.control"})),
    # The node-to-node channel (issue 11): secrets, mutual TLS, frames, server and links.
    ("cluster", frozenset({"memcloud.cluster"})),
    (
        "seam",
        frozenset(
            {
                "memcloud.auth",
                "memcloud.gate",
                "memcloud.auth_throttle",
                "memcloud.admission",
                "memcloud.unowned",
                "memcloud.service",
                "memcloud.text_login",
                "memcloud.text_forwarding",
                "memcloud.text_admin",
                "memcloud.text_session",
                "memcloud.binary_forwarding",
                "memcloud.meta_session",
                "memcloud.binary_session",
                "memcloud.admin_commands",
                "memcloud.nodes",
                "memcloud.deployment",
                "memcloud.forwarded",
                "memcloud.bootstrap",
            }
        ),
    ),
    ("alerts", frozenset({"memcloud.alerts"})),
    ("webauth", frozenset({"memcloud.webauth"})),
    ("dashboard", frozenset({"memcloud.dashboard"})),
    ("provisioning", frozenset({"memcloud.provisioning"})),
    ("api", frozenset({"memcloud.api"})),
    ("server", frozenset({"memcloud.server"})),
    ("top", frozenset({"memcloud.cli", "memcloud.testing"})),
)

# (importing unit or module, imported module) -> why it is imported late.
DEFERRED_IMPORTS: dict[tuple[str, str], str] = {
    ("memcloud.cli", "memcloud.server.runner"): (
        "`memcloud serve` only: management commands never load the server (uvloop, uvicorn), "
        "and a build without the server still manages the control store"
    ),
}

# The composition root of the HTTP side, and the one module that may import it.
COMPOSITION_ROOT = "memcloud.api.app"
ROOT_IMPORTERS = frozenset({"memcloud.api.server"})

STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    # A module of ours as resolved (`from memcloud.api import v1` is memcloud.api.v1), or
    # the name as written for anything else (`fastapi.responses`).
    target: str
    line: int
    # Inside a function or lambda, or through importlib.import_module / __import__.
    deferred: bool


def read_sources(root: Path = SOURCE_ROOT, package: str = PACKAGE) -> dict[str, str]:
    """Module name -> source, for every .py file of the package."""
    sources: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def _is_package(name: str, sources: Mapping[str, str]) -> bool:
    return any(other.startswith(name + ".") for other in sources)


def _from_base(importer: str, node: ast.ImportFrom, sources: Mapping[str, str]) -> str:
    if node.level == 0:
        return node.module or ""
    # A relative import counts from the importer's package (itself, if it is one).
    base = importer if _is_package(importer, sources) else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _dynamic_target(node: ast.Call) -> str | None:
    """The module an importlib.import_module(...) or __import__(...) call names ("?" when
    it is computed), else None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__"):
        return None
    first = node.args[0] if node.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return "?"


def imports_of(importer: str, source: str, sources: Mapping[str, str]) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(importer, alias.name, node.lineno, in_function))
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(importer, node, sources)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in sources else base
                found.append(Import(importer, target, node.lineno, in_function))
        elif isinstance(node, ast.Call):
            named = _dynamic_target(node)
            if named is not None:
                found.append(Import(importer, named, node.lineno, True))
        function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or function)

    visit(ast.parse(source), False)
    return found


def all_imports(sources: Mapping[str, str]) -> list[Import]:
    return [each for name, source in sources.items() for each in imports_of(name, source, sources)]


def unit_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _where(found: Import) -> str:
    return f"{found.importer}:{found.line} imports {found.target}"


def protocol_violations(imports: Iterable[Import]) -> list[str]:
    return [
        f"{_where(i)}: protocol imports only the standard library and itself"
        for i in imports
        if _within(i.importer, "memcloud.protocol")
        and not _within(i.target, "memcloud.protocol")
        and i.target.partition(".")[0] not in STANDARD_LIBRARY
    ]


def storage_violations(imports: Iterable[Import]) -> list[str]:
    return [
        f"{_where(i)}: storage imports nothing of ours but itself"
        for i in imports
        if _within(i.importer, "memcloud.storage")
        and _ours(i.target)
        and not _within(i.target, "memcloud.storage")
    ]


def layer_violations(
    imports: Iterable[Import], layers: tuple[tuple[str, frozenset[str]], ...] = LAYERS
) -> list[str]:
    level = {unit: index for index, (_, units) in enumerate(layers) for unit in units}
    names = [name for name, _ in layers]
    problems: list[str] = []
    for i in imports:
        if not _ours(i.target):
            continue
        source, target = unit_of(i.importer), unit_of(i.target)
        for unit in (source, target):
            if unit not in level:
                problems.append(f"{_where(i)}: {unit} is in no layer (add it to LAYERS)")
        if source in level and target in level and level[target] > level[source]:
            problems.append(
                f"{_where(i)}: {source} ({names[level[source]]}) is below "
                f"{target} ({names[level[target]]})"
            )
    return sorted(set(problems))


def _allowed_late(found: Import, allowed: Mapping[tuple[str, str], str]) -> bool:
    return any(
        _within(found.importer, importer) and found.target == target for importer, target in allowed
    )


def deferred_violations(
    imports: Iterable[Import], allowed: Mapping[tuple[str, str], str] = DEFERRED_IMPORTS
) -> list[str]:
    imports = list(imports)
    problems = [
        f"{_where(i)} inside a function (or by name): import it at module level"
        for i in imports
        if i.deferred and not _allowed_late(i, allowed)
    ]
    used = {
        (importer, target)
        for importer, target in allowed
        for i in imports
        if i.deferred and _within(i.importer, importer) and i.target == target
    }
    problems += [
        f"DEFERRED_IMPORTS lists {importer} -> {target}, which no longer imports it late: "
        "remove the entry"
        for importer, target in allowed
        if (importer, target) not in used
    ]
    return problems


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        if source != target:
            graph[source].add(target)
            graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def unit_cycles(imports: Iterable[Import]) -> list[list[str]]:
    return cycles((unit_of(i.importer), unit_of(i.target)) for i in imports if _ours(i.target))


def module_cycles(imports: Iterable[Import]) -> list[list[str]]:
    return cycles((i.importer, i.target) for i in imports if _ours(i.target))


def root_violations(imports: Iterable[Import]) -> list[str]:
    return [
        f"{_where(i)}: only {', '.join(sorted(ROOT_IMPORTERS))} imports the composition root"
        for i in imports
        if i.target == COMPOSITION_ROOT and i.importer not in ROOT_IMPORTERS
    ]


SOURCES = read_sources()
IMPORTS = all_imports(SOURCES)


def test_the_walk_reads_every_module_and_its_imports() -> None:
    # Guards every test below from passing on nothing (a wrong root, a walk that sees none).
    assert len(SOURCES) > 60
    for name in ("memcloud", "memcloud.protocol.text", "memcloud.service", COMPOSITION_ROOT):
        assert name in SOURCES
    root_imports = {i.target for i in IMPORTS if i.importer == COMPOSITION_ROOT}
    assert {"memcloud.api.v1", "memcloud.dashboard", "memcloud.provisioning"} <= root_imports


def test_protocol_imports_only_the_standard_library_and_itself() -> None:
    assert protocol_violations(IMPORTS) == []


def test_storage_imports_nothing_of_ours_but_itself() -> None:
    assert storage_violations(IMPORTS) == []


def test_every_unit_is_in_a_layer_and_imports_only_its_layer_and_below() -> None:
    assert layer_violations(IMPORTS) == []
    units = {unit_of(name) for name in SOURCES}
    placed = {unit for _, layer in LAYERS for unit in layer}
    assert units - placed == set(), "place these units in LAYERS"
    assert placed - units == set(), "these units of LAYERS no longer exist"


def test_no_import_inside_a_function_but_the_listed_ones() -> None:
    assert deferred_violations(IMPORTS) == []


def test_no_cycle_between_packages() -> None:
    assert unit_cycles(IMPORTS) == []


def test_no_cycle_between_modules() -> None:
    assert module_cycles(IMPORTS) == []


def test_only_the_api_server_imports_the_composition_root() -> None:
    assert root_violations(IMPORTS) == []
    assert any(i.target == COMPOSITION_ROOT and i.importer in ROOT_IMPORTERS for i in IMPORTS)


def test_each_check_refuses_a_deliberately_bad_tree() -> None:
    """The checks on a small tree of invented modules with one bad import of each kind."""
    sources = {
        "memcloud": "",
        "memcloud.protocol": "",
        "memcloud.protocol.text": "import re\nimport fastapi\nfrom . import limits\n",
        "memcloud.protocol.limits": "",
        "memcloud.storage": "",
        "memcloud.storage.cache": "from memcloud.clock import Clock\n",
        "memcloud.clock": "",
        "memcloud.service": "def f():\n    from memcloud.api.app import create_app\n",
        "memcloud.api": "",
        "memcloud.api.app": "from memcloud.dashboard import install\n",
        "memcloud.api.context": "import memcloud.dashboard.context\n",
        "memcloud.dashboard": "",
        "memcloud.dashboard.context": (
            "import importlib\nfrom memcloud.api.context import ApiContext\n"
            "importlib.import_module('memcloud.server.runner')\n"
        ),
        "memcloud.server": "",
        "memcloud.server.runner": "",
    }
    imports = all_imports(sources)
    assert protocol_violations(imports) == [
        "memcloud.protocol.text:2 imports fastapi: "
        "protocol imports only the standard library and itself"
    ]
    assert storage_violations(imports) == [
        "memcloud.storage.cache:1 imports memcloud.clock: storage imports nothing of ours "
        "but itself"
    ]
    assert layer_violations(imports) == [
        "memcloud.dashboard.context:2 imports memcloud.api.context: "
        "memcloud.dashboard (dashboard) is below memcloud.api (api)",
        "memcloud.dashboard.context:3 imports memcloud.server.runner: "
        "memcloud.dashboard (dashboard) is below memcloud.server (server)",
        "memcloud.service:2 imports memcloud.api.app: memcloud.service (seam) is below "
        "memcloud.api (api)",
        "memcloud.storage.cache:1 imports memcloud.clock: memcloud.storage (bottom) is below "
        "memcloud.clock (foundations)",
    ]
    assert deferred_violations(imports, {("memcloud.dashboard", "memcloud.clock"): "?"}) == [
        "memcloud.service:2 imports memcloud.api.app inside a function (or by name): "
        "import it at module level",
        "memcloud.dashboard.context:3 imports memcloud.server.runner inside a function (or "
        "by name): import it at module level",
        "DEFERRED_IMPORTS lists memcloud.dashboard -> memcloud.clock, which no longer "
        "imports it late: remove the entry",
    ]
    assert unit_cycles(imports) == [["memcloud.api", "memcloud.dashboard"]]
    assert module_cycles(imports) == [["memcloud.api.context", "memcloud.dashboard.context"]]
    assert root_violations(imports) == [
        "memcloud.service:2 imports memcloud.api.app: only memcloud.api.server imports the "
        "composition root"
    ]
