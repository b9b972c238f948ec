"""The package keeps the layering that docs/architecture.md writes down, and has no import cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mlss_jax"


def documented_layers() -> dict[str, int]:
    """{folder or top-level module: its rank} from the numbered list under ``## Layers``."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    ranks = {}
    for rank, line in enumerate(re.findall(r"^\d+\. (.*)$", section, re.M)):
        for name in re.findall(r"`(\w+)`", line.split(":", 1)[0]):
            ranks[name] = rank
    return ranks


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every mlss_jax module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlss_jax"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}   # a submodule, if it is one
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlss_jax")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None   # None: the package's own __init__


def test_the_documented_layers_name_every_folder_and_top_level_module():
    ranks = documented_layers()
    present = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or
               (p.suffix == ".py" and p.name != "__init__.py")}
    assert present == set(ranks), f"undocumented: {present - set(ranks)}, gone: {set(ranks) - present}"


def test_no_module_imports_from_a_layer_below_its_own():
    ranks = documented_layers()
    breaks = [f"{source} imports {target}"
              for source, targets in graph().items() if layer(source) is not None
              for target in targets
              if ranks[layer(target)] > ranks[layer(source)]]
    assert not breaks, "\n".join(sorted(breaks))


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
