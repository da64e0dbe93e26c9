"""The house rules, checked on the package's source: imports run one way."""

import ast
from pathlib import Path

import hessrank

PACKAGE = Path(hessrank.__file__).parent


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(name, path):
    """Absolute names of the hessrank modules (and of argparse) that ``path`` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def _graph():
    names = dict(_modules())
    graph = {}
    for name, path in names.items():
        graph[name] = {m for m in _imports(name, path) if m in names and m != name}
    return graph


def test_no_import_cycle_among_the_package_modules():
    graph = _graph()
    # a package's __init__ re-exports its own submodules: that edge is not a cycle
    def edges(name):
        return {m for m in graph[name] if not m.startswith(name + ".")}

    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in edges(node):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name)


def test_only_the_command_line_imports_argparse():
    users = [name for name, path in _modules() if "argparse" in _imports(name, path)]
    assert users and all(name.startswith("hessrank.cli") for name in users), users


def test_the_data_layer_does_not_import_the_store_and_no_library_module_imports_the_cli():
    for name, path in _modules():
        imported = _imports(name, path)
        if name.startswith("hessrank.data"):
            assert not any(m.startswith("hessrank.store") for m in imported), name
        if not name.startswith("hessrank.cli"):
            assert not any(m.startswith("hessrank.cli") for m in imported), name
        assert "hessrank" not in imported or name == "hessrank", f"{name} imports the package root"


def test_no_docstring_holds_a_control_character():
    """A LaTeX command in a docstring that is not raw loses its backslash to an escape
    (``\\tilde`` becomes a tab and ``ilde``): the rendered API reference would show it."""
    bad = []
    for name, path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False) or ""
                if any(ch in doc for ch in "\t\b\f\v\a\r"):
                    bad.append(f"{name}:{getattr(node, 'lineno', 1)}")
    assert not bad, bad
