"""The package's import graph: the core never imports the application layer, modules import down the data
flow, and there are no cycles (function-local imports count too)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "qportfolio"

#: The core's layers in data-flow order; a module may import only from its own layer or those before it.
LAYERS = [
    {"errors", "memory", "choices", "objective", "combinations", "sampling"},
    {"data"},
    {"problems"},
    {"classical"},
    {"encoding"},
    {"circuits", "warmstart"},
    {"backends"},
    {"evaluation", "postprocess"},
    {"baselines"},
    {"optimize"},
    {"app"},
    {"__init__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every qportfolio module ``path`` imports, wherever the import statement stands."""
    found = set()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("qportfolio")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("qportfolio"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


def layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer(module)


def test_the_core_never_imports_the_application_layer():
    core = [m for m in GRAPH if not m.startswith("qportfolio.app") and m != "qportfolio"]
    offenders = {m: sorted(i for i in GRAPH[m] if i.startswith("qportfolio.app")) for m in core}
    assert not {m: i for m, i in offenders.items() if i}


def test_imports_run_down_the_data_flow():
    upward = {m: sorted(i for i in imported if layer(i) > layer(m)) for m, imported in GRAPH.items()}
    assert not {m: i for m, i in upward.items() if i}


def test_no_import_cycles():
    # a package's __init__ re-exports its own modules: the edge from a submodule back to its package is
    # an import of those modules, so it is followed through the re-export rather than counted as a cycle
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in GRAPH.get(module, ()):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError(" → ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
