"""The dependency rule, read from the code's own import statements: monkeys/ -> agent/ -> harness/, and
images/ -> harness/. A verdict never depends on how an attempt was made, so the judge (harness/) imports
neither the agent, the command line nor the image builder; and no two packages import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("harness", "agent", "monkeys", "images")

# What each top-level package may import of the others.
ALLOWED = {
    "harness": set(),
    "images": {"harness"},
    "agent": {"harness"},
    "monkeys": {"harness", "agent", "images"},
}


def packages() -> dict[str, Path]:
    """Every package of ours (a folder with __init__.py), by dotted name."""
    found = {}
    for top in TOP:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            found[".".join(init.parent.relative_to(ROOT).parts)] = init.parent
    return found


def imported(path: Path, module: str) -> set[str]:
    """Every module named by an import statement in the file, at any depth (a lazy import in a function
    is still a dependency), relative imports resolved against ``module``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from harness import engine` names the module harness.engine
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def package_of(name: str, known: dict[str, Path]) -> str | None:
    """The package of ours that holds module ``name`` (the longest known prefix), or None."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def dependencies() -> dict[str, dict[str, list[str]]]:
    """package -> package it imports -> the files that do."""
    known = packages()
    edges: dict[str, dict[str, list[str]]] = {p: {} for p in known}
    for package, folder in known.items():
        for path in sorted(folder.glob("*.py")):
            module = package if path.name == "__init__.py" else f"{package}.{path.stem}"
            for name in imported(path, module):
                target = package_of(name, known)
                if target and target != package:
                    edges[package].setdefault(target, []).append(str(path.relative_to(ROOT)))
    return edges


def test_the_packages_are_found():
    known = packages()
    assert {"harness", "harness.scores", "agent", "agent.scaffolds", "monkeys", "monkeys.commands", "images"} <= set(known)


def test_each_package_imports_only_what_the_rule_allows():
    wrong = []
    for package, targets in dependencies().items():
        top = package.split(".")[0]
        for target, files in targets.items():
            if target.split(".")[0] not in ALLOWED[top] | {top}:
                wrong.append(f"{package} imports {target} in {', '.join(sorted(set(files)))}")
    assert not wrong, "\n".join(wrong)


def modules() -> dict[str, Path]:
    """Every module of ours, by dotted name (a package's __init__ under the package's name)."""
    found = {}
    for package, folder in packages().items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.name == "__init__.py" else f"{package}.{path.stem}"] = path
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle found by a depth-first walk, as the modules around it."""
    found, state = [], {}  # state: 1 on the current path, 2 done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    return found


def test_no_module_imports_itself_through_others():
    # No cycle among modules, so none among packages either: a harness module that needed a monkeys one
    # would show here even through a third package, and ALLOWED would name it too.
    mods = modules()
    edges = {m: {n for n in imported(path, m) if n in mods and n != m} for m, path in mods.items()}
    found = cycles(edges)
    assert not found, "\n".join(" -> ".join(c) for c in found)


def test_the_scores_build_on_the_judge_never_the_reverse():
    wrong = [f"{package} imports {target} in {', '.join(sorted(set(files)))}"
             for package, targets in dependencies().items() if package == "harness"
             for target, files in targets.items() if target == "harness.scores"]
    assert not wrong, "\n".join(wrong)


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_reader_sees_relative_and_lazy_imports(tmp_path):
    # The rule is only as good as the reading: a lazy import inside a function, and a relative one.
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from agent.sampler import Sampler\nfrom .store import RunStore\nfrom harness import engine\n")
    names = imported(source, "harness.x")
    assert {"agent.sampler", "harness.store", "harness.engine"} <= names
