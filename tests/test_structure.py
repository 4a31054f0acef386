"""The shape of the house: imports run one way, no circles, no long files.

Every import counts, including imports inside functions and under
``TYPE_CHECKING``: a lazy import that dodges a circle is still a circle.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline_core", "lambdas", "stacks", "training", "local", "bench")
MAX_LINES = 700


def _sources() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports (a ``from package import name`` of a
    submodule counts as importing that submodule)."""
    this = _module(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            # The longest project module the name is, or is inside of.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != this and not this.startswith(name + "."):
                found.add(name)
    return found


@functools.cache  # one parse of every source file for all the tests here
def _graph() -> dict[str, set[str]]:
    paths = _sources()
    modules = {_module(p) for p in paths}
    return {_module(p): _imports(p, modules) for p in paths}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_checker_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_anywhere() -> None:
    assert _cycles(_graph()) == []


# (importer prefix, prefixes it must never import)
LAYERS = [
    ("local.emulator", ("local.account", "local.cli")),
    ("local.account", ("local.cli",)),
    ("training", ("local", "stacks", "lambdas")),
    ("pipeline_core", ("local", "stacks", "lambdas", "training")),
    ("lambdas", ("local", "stacks", "training")),
    ("stacks", ("local",)),
]


@pytest.mark.parametrize(("importer", "forbidden"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_imports_run_one_way(importer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module == importer or module.startswith(importer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )
    assert wrong == []


def test_no_source_file_is_over_the_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_local_keeps_few_files_at_its_top() -> None:
    assert len(list((ROOT / "local").glob("*.py"))) <= 12


def test_every_local_package_says_what_it_is_and_may_import() -> None:
    for init in sorted((ROOT / "local").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.relative_to(ROOT)} does not say what it may import"


def test_every_markdown_file_named_is_in_the_repository() -> None:
    """A comment or page that points to a document the clone does not have
    (notes kept beside the repository, say) fails here."""
    tracked = [*_sources(), ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    present = {p.name for p in ROOT.rglob("*.md") if "node_modules" not in p.parts}
    dangling = sorted(
        f"{p.relative_to(ROOT)} names {name}"
        for p in tracked
        for name in set(re.findall(r"[\w.-]+\.md\b", p.read_text()))
        if Path(name).name not in present
    )
    assert dangling == []
